package trading

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
)

// EventSQL is the part of a statement that records a notification (see
// Config.OutcomeEvent).
type EventSQL struct {
	// CTEs follow the statement's own in its WITH list; "" for none.
	CTEs string
	// Args are their parameters, numbered from the first given.
	Args []any
	// Correct, when set, is told the row as the statement left it (c),
	// for CTEs built before the statement ran (see recordLocked): it
	// replaces the event's data when c differs from what it was built
	// from, and reports whether it did.
	Correct func(ctx context.Context, c Confirmation) (corrected bool, err error)
}

// applyOutcome is apply with the outcome's notification (Config.OutcomeEvent)
// and the reply questions the broker asked: the status change, the
// questions' history entries and audit rows, and the notification share
// one transaction.
func (s *Service) applyOutcome(ctx context.Context, id string, from []Status, o outcome, now time.Time) (Confirmation, bool, error) {
	if s.cfg.OutcomeEvent == nil && len(o.questions) == 0 {
		return apply(ctx, s.pool, id, from, o, now)
	}
	var c Confirmation
	var changed bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The questions come first in the history: IBKR asked them
		// before it answered the order.
		for _, q := range o.questions {
			if err := recordQuestion(ctx, tx, id, now, q); err != nil {
				return err
			}
		}
		var err error
		if c, changed, err = apply(ctx, tx, id, from, o, now); err != nil {
			return err
		}
		if !changed {
			// Another instance settled the row (and its questions).
			return errUnchanged
		}
		if s.cfg.OutcomeEvent == nil {
			return nil
		}
		ev, err := s.cfg.OutcomeEvent(c, "src", 2)
		if err != nil || ev.CTEs == "" {
			return err
		}
		_, err = tx.Exec(ctx, `WITH src AS (SELECT $1::uuid AS user_id), `+ev.CTEs+` SELECT 1`, append([]any{c.UserID}, ev.Args...)...)
		return err
	})
	if errors.Is(err, errUnchanged) {
		return Confirmation{}, false, nil
	}
	if err != nil {
		return Confirmation{}, false, err
	}
	return c, changed, nil
}

// errUnchanged rolls back the questions of an outcome that was not applied.
var errUnchanged = errors.New("confirmation moved on")

// recordQuestionSQL appends a question to the history and the audit trail
// of the confirmation, in one statement.
var recordQuestionSQL = `
		WITH c AS (SELECT id, user_id FROM confirmations WHERE id = $1),
		e AS (
			INSERT INTO confirmation_events (confirmation_id, at, status, message, question)
			SELECT id, $2, 'pending', $3, $4 FROM c)
		` + audit.InsertSelect(audit.Exprs{At: "$2", UserID: "user_id", Action: "'confirmation.question'",
	Subject: "id::text", Details: "$4"}, "c")

// recordQuestion writes q, asked about confirmation id, to its status
// history and the audit trail.
func recordQuestion(ctx context.Context, tx pgx.Tx, id string, at time.Time, q Question) error {
	args, err := questionArgs(id, at, q)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, recordQuestionSQL, args...); err != nil {
		return fmt.Errorf("record question of %s: %w", id, err)
	}
	return nil
}

// questionArgs are recordQuestionSQL's arguments.
func questionArgs(id string, at time.Time, q Question) ([]any, error) {
	b, err := json.Marshal(q)
	if err != nil {
		return nil, fmt.Errorf("record question of %s: %w", id, err)
	}
	return []any{id, at, questionMessage(q), b}, nil
}

// questionMessage is a question's line in the status history.
func questionMessage(q Question) string {
	answer := "Ordertune answered yes"
	if q.Answer != AnswerConfirmed {
		answer = "Ordertune answered no"
	}
	return fmt.Sprintf("IBKR asked [%s]: %s — %s (%s)", strings.Join(q.MessageIDs, ","), q.Text, answer, q.Reason)
}

// recordLocked records a confirm's outcome o on the lock's connection and
// releases the lock, in one round trip: the questions IBKR asked, the
// status change with its history and audit rows and its notification, and
// the unlock run as one batch, which PostgreSQL runs as one transaction.
// The next order of the account thus sees this one's outcome. When the
// row has moved on meanwhile (another instance's reconciliation settled
// it), it returns the row as it is.
//
// The notification is built before the statement runs, from the row as
// the confirm wrote it (lo.pending) with o applied. Only a change by
// someone else between the two (the ledger importing a fill in that
// instant) makes that differ from the row as it is left; the event's data
// is then corrected at once.
func (s *Service) recordLocked(ctx context.Context, id string, o outcome, lo *lockedOrder) (Confirmation, error) {
	// From unknown too: another instance's reconciliation may have taken
	// the row for abandoned meanwhile, and this answer is better evidence
	// than its lookup.
	from := []Status{StatusPending, StatusUnknown}
	now := s.cfg.Now().UTC()
	var ev EventSQL
	if s.cfg.OutcomeEvent != nil {
		var err error
		if ev, err = s.cfg.OutcomeEvent(lo.pending.after(o, now), "u", applyArgs+1); err != nil {
			return Confirmation{}, err
		}
	}
	sql, args, err := applyStatement(id, from, o, now, ev)
	if err != nil {
		return Confirmation{}, err
	}
	var c Confirmation
	changed := true
	b := &pgx.Batch{}
	// The questions IBKR asked come first in the history.
	for _, q := range o.questions {
		qargs, err := questionArgs(id, now, q)
		if err != nil {
			return Confirmation{}, err
		}
		b.Queue(recordQuestionSQL, qargs...)
	}
	b.Queue(sql, args...).QueryRow(func(row pgx.Row) error {
		var err error
		if c, err = scanConfirmation(row); errors.Is(err, pgx.ErrNoRows) {
			changed, err = false, nil
		}
		return err
	})
	b.Queue(unlockSQL, lo.accountID)
	if err := lo.conn.SendBatch(ctx, b).Close(); err != nil {
		return Confirmation{}, err
	}
	lo.done(true)
	if !changed {
		return s.confirmationAny(ctx, id)
	}
	if ev.Correct != nil {
		switch corrected, err := ev.Correct(ctx, c); {
		case err != nil:
			s.logger(ctx).Error().Err(err).Msg("could not correct an outcome's notification")
		case corrected:
			s.logger(ctx).Warn().Msg("the confirmation changed while its outcome was recorded; its notification was corrected")
		}
	}
	return c, nil
}

// outcome is a status change of a confirmation.
type outcome struct {
	status        Status
	conid         int64
	brokerOrderID string
	brokerStatus  string
	filled        string // decimal; "" keeps the stored value
	avgPrice      string // decimal; "" keeps the stored value
	errCode       string
	errMessage    string
	message       string // for the status history
	// nextCheck is when reconciliation should look next; zero means never.
	nextCheck time.Time
	misses    int
	// questions are the reply questions the broker asked before
	// answering the order, recorded before the status change.
	questions []Question
}

// addEvent appends to a confirmation's status history.
func addEvent(ctx context.Context, tx pgx.Tx, id string, at time.Time, o outcome) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO confirmation_events (confirmation_id, at, status, broker_status, filled_quantity, avg_fill_price, error_code, message)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		id, at, o.status, nullable(o.brokerStatus), nullable(o.filled), nullable(o.avgPrice), nullable(o.errCode), o.message)
	return err
}

// execer runs one statement; a pool and a transaction both do.
type execer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// applyArgs is how many parameters applySQL has; a notification's CTEs
// (applyWith) number theirs from the next.
const applyArgs = 15

// applySQL is apply's one statement.
var applySQL = applyWith("")

// applyWith is applySQL with the CTEs of a notification ("" for none),
// which select from u.
func applyWith(event string) string {
	if event != "" {
		event = ",\n" + event
	}
	return `
		WITH u AS (
			UPDATE confirmations SET
				status = $3,
				conid = coalesce($4, conid),
				broker_order_id = coalesce($5, broker_order_id),
				broker_status = coalesce($6, broker_status),
				filled_quantity = coalesce($7::numeric, filled_quantity),
				avg_fill_price = coalesce($8::numeric, avg_fill_price),
				error_code = $9, error_message = $10,
				next_check_at = $11, misses = $12, updated_at = $13
			WHERE id = $1 AND status = ANY($2)
			RETURNING *),
		e AS (
			INSERT INTO confirmation_events (confirmation_id, at, status, broker_status, filled_quantity, avg_fill_price, error_code, message)
			SELECT id, $13, $3, $6, $7::numeric, $8::numeric, $9, $14 FROM u),
		a AS (
			` + audit.InsertSelect(audit.Exprs{At: "$13", UserID: "user_id", Action: "'confirmation.' || $3",
		Subject: "id::text", Details: "$15"}, "u") + `)` + event + `,
		async AS (
			SELECT set_config('synchronous_commit', 'off', true))
		SELECT ` + confColumns + ` FROM u c, async`
}

// apply records o on confirmation id when the row is still in one of the
// from statuses — the row, its status-history entry and its audit row in
// one statement, so they commit together — and returns the row as it is
// afterwards. changed is false when the row had moved on.
//
// The commit does not wait for the WAL flush (synchronous_commit off, for
// this transaction only). An outcome is IBKR's fact, not ours: if a crash
// loses the last fraction of a second of commits, the row is left as it
// was — "pending" or the previous status — and reconciliation reads the
// order again by its cOID and records the same outcome. What must be
// durable before IBKR is called, the pending row, is committed
// synchronously by insertPending.
func apply(ctx context.Context, q execer, id string, from []Status, o outcome, now time.Time) (c Confirmation, changed bool, err error) {
	sql, args, err := applyStatement(id, from, o, now, EventSQL{})
	if err != nil {
		return Confirmation{}, false, err
	}
	c, err = scanConfirmation(q.QueryRow(ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return Confirmation{}, false, nil
	}
	if err != nil {
		return Confirmation{}, false, err
	}
	return c, true, nil
}

// applyStatement returns apply's statement and its arguments, with the
// notification ev.
func applyStatement(id string, from []Status, o outcome, now time.Time, ev EventSQL) (string, []any, error) {
	fromText := make([]string, len(from))
	for i, f := range from {
		fromText[i] = string(f)
	}
	var next *time.Time
	if !o.nextCheck.IsZero() {
		next = &o.nextCheck
	}
	var conid *int64
	if o.conid > 0 {
		conid = &o.conid
	}
	details := map[string]any{"status": string(o.status)}
	if o.conid > 0 {
		details["conid"] = o.conid
	}
	for k, v := range map[string]string{"broker_order_id": o.brokerOrderID, "broker_status": o.brokerStatus,
		"filled_quantity": o.filled, "avg_fill_price": o.avgPrice, "error_code": o.errCode, "message": o.message} {
		if v != "" {
			details[k] = v
		}
	}
	dj, err := json.Marshal(details)
	if err != nil {
		return "", nil, err
	}
	args := []any{id, fromText, string(o.status), conid, nullable(o.brokerOrderID), nullable(o.brokerStatus), nullable(o.filled), nullable(o.avgPrice),
		nullable(o.errCode), nullable(o.errMessage), next, o.misses, now, o.message, dj}
	if ev.CTEs == "" {
		return applySQL, args, nil
	}
	return applyWith(ev.CTEs), append(args, ev.Args...), nil
}

// after is c as apply leaves it once it records o at now: applySQL's
// rules, in Go. A confirm builds its notification from it before the
// statement that records the outcome runs (see recordLocked).
func (c Confirmation) after(o outcome, now time.Time) Confirmation {
	c.Status = o.status
	if o.conid > 0 {
		conid := o.conid
		c.Conid = &conid
	}
	if o.brokerOrderID != "" {
		c.BrokerOrderID = nullable(o.brokerOrderID)
	}
	if o.brokerStatus != "" {
		c.BrokerStatus = nullable(o.brokerStatus)
	}
	if o.filled != "" {
		c.FilledQuantity = trimDecimal(o.filled)
	}
	if o.avgPrice != "" {
		c.AvgFillPrice = trimPtr(&o.avgPrice)
	}
	c.Error = nil
	if o.errCode != "" {
		c.Error = newConfirmationError(o.errCode, o.errMessage)
	}
	c.UpdatedAt = now.UTC().Truncate(time.Microsecond)
	return c
}
