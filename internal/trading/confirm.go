package trading

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/logging"
	"github.com/ordertune/ordertune/internal/risk"
)

// MaxIdempotencyKey bounds an Idempotency-Key's length.
const MaxIdempotencyKey = 255

// checkKey validates an Idempotency-Key: 1 to 255 visible ASCII characters.
func checkKey(key string) error {
	bad := func(msg string) error {
		return errs.Fields("invalid Idempotency-Key", errs.FieldError{Field: "Idempotency-Key", Message: msg})
	}
	if key == "" {
		return errs.E(errs.Invalid, "the Idempotency-Key header is required: send a fresh random value (a UUID) per Confirm click, and the same value when you retry it")
	}
	if len(key) > MaxIdempotencyKey {
		return bad(fmt.Sprintf("must be at most %d characters", MaxIdempotencyKey))
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return bad("must be visible ASCII characters only")
		}
	}
	return nil
}

// requestHash identifies what a key was first used for.
func requestHash(signalID, side string) []byte {
	h := sha256.Sum256([]byte(signalID + "\x00" + side))
	return h[:]
}

// Confirm places the order of signalID for userID, exactly once.
//
// The same key returns the first result (replay true); the same key with a
// different signal or side is refused; a second key for a (user, signal,
// side) that already has a live confirmation returns that one. A
// confirmation that failed is returned together with an error carrying its
// code and IBKR's text. A confirmation still "pending" or "unknown" means
// the order's fate is not known yet: the reconciliation worker settles it.
func (s *Service) Confirm(ctx context.Context, userID, signalID, key string, side Side) (c Confirmation, replay bool, err error) {
	defer func() {
		switch {
		case replay:
			s.cfg.OnConfirm("duplicate")
		case c.ID != "":
			s.cfg.OnConfirm(string(c.Status))
		case errs.As(err) != nil && errs.As(err).Code != errs.Internal:
			s.cfg.OnConfirm("refused")
		}
	}()
	return s.confirm(ctx, userID, signalID, key, side)
}

func (s *Service) confirm(ctx context.Context, userID, signalID, key string, side Side) (c Confirmation, replay bool, err error) {
	if err := checkKey(key); err != nil {
		return Confirmation{}, false, err
	}
	if side != Buy && side != Sell {
		return Confirmation{}, false, errs.Fields("invalid confirmation", errs.FieldError{Field: "side", Message: "must be BUY or SELL"})
	}
	if !validID(signalID) {
		return Confirmation{}, false, errs.E(errs.NotFound, "no such signal")
	}
	hash := requestHash(signalID, string(side))
	first, g, ps, sn, err := s.confirmInputs(ctx, userID, key, signalID)
	if err != nil {
		return Confirmation{}, false, err
	}
	// A key seen before answers with its first result, whatever the signal
	// looks like now (withdrawn, expired).
	if first != nil {
		return s.replay(ctx, *first, hash)
	}
	if g == nil {
		return Confirmation{}, false, errs.E(errs.NotFound, "no such signal")
	}
	p, err := s.preview(ctx, userID, *g, &ps)
	if err != nil {
		return Confirmation{}, false, err
	}
	if side != p.Side {
		return Confirmation{}, false, errs.Fields("invalid confirmation", errs.FieldError{Field: "side",
			Message: fmt.Sprintf("this is an %s signal: confirm %s", g.Kind, p.Side)})
	}
	// A first look at the switches and the per-order limits, from the
	// batch: those refusals end here, without waiting for the account's
	// lock. The day's caps are checked by the statement that writes the
	// order, under the lock.
	if err := s.checkRisk(ctx, userID, sn, &p); err != nil {
		return Confirmation{}, false, s.auditRefusal(ctx, userID, p, err)
	}
	if err := s.brokerReachable(); err != nil {
		return Confirmation{}, false, err
	}
	return s.confirmPreviewed(ctx, userID, key, hash, p, sn)
}

// confirmPreviewed records the previewed order p as pending and places it,
// or answers with the confirmation that already holds the key or the live
// (user, signal, side). sn is the user's risk state that p was checked
// against.
//
// It holds the account's order lock from the write-ahead row until the
// outcome is recorded. The row is written in the round trip that takes the
// lock, by a statement that counts the day's entries itself and writes
// nothing when the order would break a day's cap (see risk.DayCap): two
// confirms of one account cannot both squeeze under a cap, and a refused
// confirm writes nothing. What is read under the lock goes through the
// lock's connection; the contract is resolved before it.
func (s *Service) confirmPreviewed(ctx context.Context, userID, key string, hash []byte, p Preview, sn risk.Snapshot) (Confirmation, bool, error) {
	id := s.cfg.NewID()
	ctx = logging.With(ctx, s.log, func(l zerolog.Context) zerolog.Context {
		return l.Str("confirmation", id).Str("mode", string(p.Broker.Mode))
	})
	// The session, then the contract: neither places anything, and the
	// lock's connection is then the only one an order holds while it is
	// sent, never through a handshake (see warm). A failed lookup fails
	// the confirmation once it is recorded.
	s.warm(ctx, userID)
	lo := &lockedOrder{accountID: p.accountID}
	lo.conid, lo.conidErr = s.conid(ctx, userID, p.Ticker)
	s.markInflight(id, true)
	defer s.markInflight(id, false)
	w, b := s.pendingRow(ctx, userID, key, hash, id, p, sn)
	conn, release, err := s.accounts.lock(ctx, p.accountID, b)
	if err != nil {
		// The row may have committed all the same (an answer lost with
		// the connection); nothing is sent for it, and reconciliation must
		// know that rather than look for an order.
		s.kept.keep(id, outcome{status: StatusFailed, errCode: string(errs.Unavailable),
			errMessage: "the confirmation could not be recorded; nothing was sent to IBKR",
			message:    "not recorded in time; nothing sent"}, s.cfg.Now().UTC())
		return Confirmation{}, false, errs.Wrap(err, errs.Unavailable, "could not record the confirmation; nothing was sent to IBKR, confirm again")
	}
	lo.conn, lo.release, lo.pending = conn, release, w.row
	defer lo.done(false)
	switch {
	case !w.fits:
		lo.done(false)
		return Confirmation{}, false, s.auditRefusal(ctx, userID, p, s.dayCapRefusal(ctx, userID, sn, p, w.used))
	case !w.inserted:
		// The first confirmation may still be waiting for this lock.
		lo.done(false)
		return s.firstOf(ctx, userID, key, hash, p.SignalID, p.Side)
	}
	c := s.place(ctx, userID, id, p, lo)
	return c, false, failure(c)
}

// dayCapRefusal is the error of an entry that the write-ahead statement
// found over a day's cap, with the day's usage it counted.
func (s *Service) dayCapRefusal(ctx context.Context, userID string, sn risk.Snapshot, p Preview, used risk.Usage) error {
	u := make(map[string]risk.Usage, len(sn.Used)+1)
	for m, v := range sn.Used {
		u[m] = v
	}
	u[string(p.Broker.Mode)] = used
	sn.Used = u
	if err := s.checkRisk(ctx, userID, sn, &p); err != nil {
		return err
	}
	return errs.E(errs.Conflict, "your day's orders changed while this one was checked; nothing was sent, confirm again")
}

// confirmInputs reads in one round trip what a confirm starts from: the
// confirmation already made with key (nil if none), the signal (nil if
// none), the user's position size and their risk state (switches, limits
// and ceilings; the day's usage is counted by the write-ahead statement,
// under the account's lock, see pendingRow). The halt is read here, at
// every confirm, so a halt set on any replica refuses the next confirm on
// every other one, at no extra round trip.
func (s *Service) confirmInputs(ctx context.Context, userID, key, signalID string) (*Confirmation, *Signal, PositionSize, risk.Snapshot, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT `+confColumns+` FROM confirmations c WHERE c.user_id = $1 AND c.idempotency_key = $2`, userID, key)
	b.Queue(`SELECT `+signalColumns+` FROM signals s WHERE s.id = $1`, signalID)
	b.Queue(`SELECT mode, value::text FROM position_sizes WHERE user_id = $1`, userID)
	rq, rargs := s.risk.GateQuery(userID)
	b.Queue(rq, rargs...)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	fail := func(err error) (*Confirmation, *Signal, PositionSize, risk.Snapshot, error) {
		return nil, nil, PositionSize{}, risk.Snapshot{}, fmt.Errorf("read confirm inputs: %w", err)
	}
	var first *Confirmation
	c, err := scanConfirmation(br.QueryRow())
	switch {
	case err == nil:
		first = &c
	case !errors.Is(err, pgx.ErrNoRows):
		return fail(err)
	}
	var sig *Signal
	g, err := scanSignal(br.QueryRow(), s.cfg.Now())
	switch {
	case err == nil:
		sig = &g
	case !errors.Is(err, pgx.ErrNoRows):
		return fail(err)
	}
	ps, err := scanPositionSize(br.QueryRow())
	if err != nil {
		return fail(err)
	}
	sn, err := s.risk.ScanGate(br.QueryRow())
	if err != nil {
		return fail(err)
	}
	if err := br.Close(); err != nil {
		return fail(err)
	}
	return first, sig, ps, sn, nil
}

// failure is the error a failed confirmation is answered with.
func failure(c Confirmation) error {
	if c.Status != StatusFailed || c.Error == nil {
		return nil
	}
	return errs.E(errs.Code(c.Error.Code), "%s", c.Error.Message)
}

// firstOf answers a confirm whose insert hit a unique index: the same key,
// or another live confirmation of the same (user, signal, side).
func (s *Service) firstOf(ctx context.Context, userID, key string, hash []byte, signalID string, side Side) (Confirmation, bool, error) {
	if first, ok, err := s.byKey(ctx, userID, key); err != nil {
		return Confirmation{}, false, err
	} else if ok {
		return s.replay(ctx, first, hash)
	}
	row := s.pool.QueryRow(ctx, `SELECT `+confColumns+` FROM confirmations c
		WHERE c.user_id = $1 AND c.signal_id = $2 AND c.side = $3 AND c.live`, userID, signalID, side)
	first, err := scanConfirmation(row)
	if errors.Is(err, pgx.ErrNoRows) {
		// The live one failed or was cancelled in between: the user may
		// simply confirm again.
		return Confirmation{}, false, errs.E(errs.Conflict, "another confirmation of this signal just ended; confirm again")
	}
	if err != nil {
		return Confirmation{}, false, fmt.Errorf("read live confirmation: %w", err)
	}
	c, err := s.settled(ctx, first)
	return c, true, err
}

// byKey finds userID's confirmation made with key.
func (s *Service) byKey(ctx context.Context, userID, key string) (Confirmation, bool, error) {
	c, err := scanConfirmation(s.pool.QueryRow(ctx, `SELECT `+confColumns+` FROM confirmations c
		WHERE c.user_id = $1 AND c.idempotency_key = $2`, userID, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return Confirmation{}, false, nil
	}
	if err != nil {
		return Confirmation{}, false, fmt.Errorf("look up idempotency key: %w", err)
	}
	return c, true, nil
}

// replay returns the first result of a key, refusing a different request
// under the same key.
func (s *Service) replay(ctx context.Context, first Confirmation, hash []byte) (Confirmation, bool, error) {
	if !bytes.Equal(first.requestHash, hash) {
		return Confirmation{}, false, errs.Fields("Idempotency-Key reused for a different request",
			errs.FieldError{Field: "Idempotency-Key", Message: "was already used for another signal or side; use a fresh key per Confirm click"})
	}
	c, err := s.settled(ctx, first)
	if err != nil {
		return Confirmation{}, false, err
	}
	return c, true, failure(c)
}

// settled waits (bounded) while a confirmation is still pending in another
// request, so that a double click gets the first click's outcome rather
// than "pending".
func (s *Service) settled(ctx context.Context, c Confirmation) (Confirmation, error) {
	if c.Status != StatusPending {
		return c, nil
	}
	deadline := time.Now().Add(s.cfg.OrderTimeout + 5*time.Second)
	wait := 10 * time.Millisecond
	for c.Status == StatusPending && time.Now().Before(deadline) {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return c, nil
		case <-t.C:
		}
		if wait < 200*time.Millisecond {
			wait *= 2
		}
		next, err := s.confirmation(ctx, s.pool, c.UserID, c.ID, false)
		if err != nil {
			return c, err
		}
		c = next
	}
	return c, nil
}

// pendingWrite is what the write-ahead statement found: whether the order
// fits under the day's caps (always, for an exit), the day's usage it
// counted, and whether it inserted the row — false when a unique index
// (the key, or the live (user, signal, side)) already holds another
// confirmation.
type pendingWrite struct {
	fits, inserted bool
	used           risk.Usage
	// row is the confirmation as the statement writes it.
	row Confirmation
}

// pendingConfirmation is the write-ahead row of the previewed order p, as
// scanConfirmation reads it back (PostgreSQL keeps microseconds).
func pendingConfirmation(id, userID string, p Preview, now time.Time) Confirmation {
	now = now.UTC().Truncate(time.Microsecond)
	return Confirmation{ID: id, UserID: userID, SignalID: p.SignalID, Side: p.Side, Ticker: p.Ticker, Quantity: p.Quantity,
		OrderType: p.OrderType, TIF: p.TIF, LimitPrice: trimPtr(p.LimitPrice), Mode: p.Broker.Mode,
		AccountIDMasked: p.Broker.AccountIDMasked, Status: StatusPending, FilledQuantity: "0", CreatedAt: now, UpdatedAt: now}
}

// pendingRow queues the statement that commits the write-ahead row, its
// first status-history entry and its audit row (one statement, one commit:
// they exist together or not at all) — for an entry only if it fits under
// sn's day caps, counted again by the statement itself. The returned
// pendingWrite is filled in when the batch has run.
//
// The row is due for reconciliation once PendingGrace has passed: by then
// its request has recorded the outcome, or it died.
func (s *Service) pendingRow(ctx context.Context, userID, key string, hash []byte, id string, p Preview, sn risk.Snapshot) (*pendingWrite, *pgx.Batch) {
	now := s.cfg.Now().UTC()
	details := map[string]any{"signal_id": p.SignalID, "side": p.Side, "ticker": p.Ticker, "quantity": p.Quantity,
		"order_type": p.OrderType, "tif": p.TIF, "mode": p.Broker.Mode, "idempotency_key": key}
	if p.LimitPrice != nil {
		details["limit_price"] = *p.LimitPrice
	}
	dj, _ := json.Marshal(details) // strings and numbers only
	capped := s.risk.DayCapOf(sn)
	value := p.EstimatedValue
	if p.Side == Sell || value == "" {
		// No entry limit refuses an exit.
		capped.Orders, capped.Value, value = nil, nil, "0"
	}
	w := &pendingWrite{row: pendingConfirmation(id, userID, p, now)}
	b := &pgx.Batch{}
	queuePending(b, w, pendingArgs(id, userID, key, hash, p, now, dj, now.Add(s.cfg.PendingGrace), audit.ClientIP(ctx), value, capped))
	return w, b
}

// pendingArgs are insertPendingSQL's arguments, in its order.
func pendingArgs(id, userID, key string, hash []byte, p Preview, now time.Time, details []byte, nextCheck time.Time, ip, value string, capped risk.DayCap) []any {
	return []any{id, userID, p.SignalID, p.Side, key, hash, p.Ticker, p.Quantity, p.OrderType, p.TIF, p.LimitPrice, p.refPrice,
		p.Broker.Mode, p.Broker.AccountIDMasked, now, details, nextCheck, ip,
		value, capped.Orders, capped.Value, capped.Start, capped.End}
}

// queuePending queues insertPendingSQL with args on b; w is filled in
// when the batch has run.
func queuePending(b *pgx.Batch, w *pendingWrite, args []any) {
	b.Queue(insertPendingSQL, args...).QueryRow(func(row pgx.Row) error {
		var n int
		if err := row.Scan(&n, &w.used.Orders, &w.used.Value, &w.fits); err != nil {
			return fmt.Errorf("record confirmation %s: %w", w.row.ID, err)
		}
		w.inserted = n == 1
		return nil
	})
}

// insertPendingSQL is pendingRow's one statement. The audit row carries
// the client's address, the Idempotency-Key and the conid (from the conid
// cache, which the confirm fills before it writes the row).
var insertPendingSQL = `
		WITH g AS (` + risk.DayCapSQL("$2::uuid", "$13::text", "$19", "$20", "$21", "$22::timestamptz", "$23::timestamptz") + `),
		c AS (
			INSERT INTO confirmations (id, user_id, signal_id, side, idempotency_key, request_hash, ticker, quantity,
				order_type, tif, limit_price, ref_price, mode, account_id_masked, status, created_at, updated_at, next_check_at)
			SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'pending', $15, $15, $17 FROM g WHERE g.ok
			ON CONFLICT DO NOTHING
			RETURNING id, user_id),
		e AS (
			INSERT INTO confirmation_events (confirmation_id, at, status, message)
			SELECT id, $15, 'pending', 'confirmed by the user; about to send to IBKR' FROM c),
		a AS (
			` + audit.InsertSelect(audit.Exprs{At: "$15", UserID: "user_id", ActorID: "user_id", IP: "$18::text",
	Action: "'confirmation.create'", Subject: "id::text",
	Details: "$16::jsonb || jsonb_build_object('conid', (SELECT conid FROM conids WHERE ticker = $7))"}, "c") + `)
		SELECT (SELECT count(*) FROM c), g.orders, g.value::text, g.ok FROM g`

// brokerReachable refuses a confirm during one of IBKR's restart windows,
// when no order can reach it. The confirm is refused, not held: the user
// learns at once that nothing was sent and when to confirm again, and the
// cut-off (09:28 or 15:50 New York time) never falls inside IBKR's
// published windows (night and weekend).
func (s *Service) brokerReachable() error {
	now := s.cfg.Now()
	_, end, in := s.cfg.Market.Maintenance(now)
	if !in {
		return nil
	}
	return &errs.Error{Code: errs.BrokerMaintenance, RetryAfter: end.Sub(now),
		Message: fmt.Sprintf("IBKR is restarting until %s; nothing was sent. Confirm again after that.",
			end.In(s.cfg.Market.Location()).Format("15:04 MST"))}
}
