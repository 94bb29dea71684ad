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
