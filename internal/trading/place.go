package trading

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/errs"
)

// lockedOrder is what a confirm holds while it places an order: the
// account's lock — its connection, on which everything read under the lock
// is read, and its release — and the contract, resolved before the lock.
type lockedOrder struct {
	accountID string
	conn      *pgxpool.Conn
	release   func(unlocked bool)
	once      sync.Once
	conid     int64
	conidErr  error
	// pending is the write-ahead row as the confirm wrote it.
	pending Confirmation
}

// done releases the lock once; unlocked says that a batch on the
// connection has already released the advisory lock.
func (lo *lockedOrder) done(unlocked bool) {
	lo.once.Do(func() { lo.release(unlocked) })
}

// place sends the previewed order for the committed pending confirmation id
// under lo's lock, records the outcome and releases the lock. It never
// fails: what cannot be recorded now is left for the reconciliation worker,
// and the confirmation is returned as "unknown".
func (s *Service) place(ctx context.Context, userID, id string, p Preview, lo *lockedOrder) Confirmation {
	// A client that hangs up must not cut an order off half-sent.
	ctx = context.WithoutCancel(ctx)
	octx, cancel := context.WithTimeout(ctx, s.cfg.OrderTimeout)
	o := s.send(octx, userID, id, p, lo)
	cancel()
	c, err := s.recordLocked(ctx, id, o, lo)
	if err != nil {
		lo.done(false)
		s.logger(ctx).Warn().Err(err).Msg("could not record an order outcome on the lock's connection; retrying")
		c, err = s.record(ctx, id, o)
	}
	log := s.logger(ctx)
	if err != nil {
		log.Error().Err(err).Str("outcome", string(o.status)).
			Msg("could not record an order outcome; reconciliation will settle it")
		s.kept.keep(id, o, s.cfg.Now().UTC())
		c = pendingConfirmation(id, userID, p, s.cfg.Now())
		c.Status = StatusUnknown
		return c
	}
	ev := log.Info().Str("status", string(c.Status)).Str("error_code", o.errCode)
	if c.Error != nil && c.Error.Kind != nil {
		// The operator reads IBKR's words and the advice the user got.
		ev = ev.Str("ibkr_text", c.Error.Message).Str("rejection_kind", *c.Error.Kind).Str("advice", *c.Error.Advice)
	}
	ev.Msg("order outcome recorded")
	return c
}

// record stores o on the pending (or meanwhile unknown) row, retrying for a few seconds while the
// database is unreachable.
func (s *Service) record(ctx context.Context, id string, o outcome) (Confirmation, error) {
	var last error
	wait := 50 * time.Millisecond
	deadline := time.Now().Add(5 * time.Second)
	for {
		// From unknown too: another instance's reconciliation may have taken
		// the row for abandoned meanwhile, and this answer is better
		// evidence than its lookup.
		c, changed, err := s.applyOutcome(ctx, id, []Status{StatusPending, StatusUnknown}, o, s.cfg.Now().UTC())
		if err == nil {
			if !changed { // another instance's reconciliation settled it first
				return s.confirmationAny(ctx, id)
			}
			return c, nil
		}
		last = err
		if time.Now().After(deadline) {
			return Confirmation{}, fmt.Errorf("record outcome of %s: %w", id, last)
		}
		time.Sleep(wait)
		if wait < time.Second {
			wait *= 2
		}
	}
}

// confirmationAny reads a confirmation whoever owns it.
func (s *Service) confirmationAny(ctx context.Context, id string) (Confirmation, error) {
	c, err := scanConfirmation(s.pool.QueryRow(ctx, `SELECT `+confColumns+` FROM confirmations c WHERE c.id = $1`, id))
	if err != nil {
		return Confirmation{}, fmt.Errorf("read confirmation %s: %w", id, err)
	}
	return c, nil
}

// send places the order at IBKR and classifies the answer. The caller
// holds the account's order lock: one order per account at a time.
func (s *Service) send(ctx context.Context, userID, id string, p Preview, lo *lockedOrder) outcome {
	if lo.conidErr != nil {
		return failed(lo.conidErr, "could not find the IBKR contract; nothing was sent")
	}
	conn, conid := lo.conn, lo.conid
	if p.Side == Sell {
		// Re-checked under the account's lock: another exit of the same
		// position may have been placed since the preview.
		left, err := s.exitQuantity(ctx, conn, userID, *p.signal, id)
		if err != nil {
			return failed(err, "nothing was sent")
		}
		if left < p.Quantity {
			return outcome{status: StatusFailed, errCode: string(errs.Conflict),
				errMessage: fmt.Sprintf("only %d shares of this position are left to sell, not %d: another exit was placed meanwhile; nothing was sent, confirm again", left, p.Quantity),
				message:    "exit quantity changed; nothing sent"}
		}
	}
	placed, err := s.broker.PlaceOrder(ctx, userID, p.order(conid, id))
	o := s.placedOutcome(conid, placed, err)
	o.questions = placed.Questions
	if err != nil {
		o.questions = questionsOf(err)
	}
	return o
}

// placedOutcome classifies the broker's answer to an order.
func (s *Service) placedOutcome(conid int64, placed OrderState, err error) outcome {
	switch {
	case err == nil:
		return outcome{status: StatusSubmitted, conid: conid, brokerOrderID: placed.OrderID,
			brokerStatus: placed.Status, message: "IBKR accepted the order",
			nextCheck: s.cfg.Now().UTC().Add(s.cfg.ReconcileInterval)}
	case errors.Is(err, ErrAccountChanged):
		return outcome{status: StatusFailed, errCode: string(errs.Conflict),
			errMessage: "the active broker connection changed after the preview; nothing was sent, confirm again",
			message:    "broker connection changed; nothing sent"}
	case errors.Is(err, ErrDuplicateOrder):
		// IBKR already has this cOID: the order exists. Look it up.
		return outcome{status: StatusUnknown, conid: conid, errCode: string(errs.BrokerOutcomeUnknown),
			errMessage: "IBKR already has an order with this client order id; it is being looked up",
			message:    "duplicate client order id: " + errText(err), nextCheck: s.cfg.Now().UTC()}
	case errs.Is(err, errs.BrokerOutcomeUnknown):
		return outcome{status: StatusUnknown, conid: conid, errCode: string(errs.BrokerOutcomeUnknown),
			errMessage: "the order was sent but IBKR's answer was lost; it is being looked up by its client order id",
			message:    "answer lost after sending: " + errText(err), nextCheck: s.cfg.Now().UTC()}
	}
	return failed(err, "IBKR did not take the order")
}

// failed is the outcome of an order that was not placed.
func failed(err error, what string) outcome {
	o := outcome{status: StatusFailed, message: what + ": " + errText(err)}
	switch e := errs.As(err); {
	case e != nil:
		o.errCode, o.errMessage = string(e.Code), e.Message
		if o.errMessage == "" {
			o.errMessage = what
		}
	case errors.Is(err, context.DeadlineExceeded):
		o.errCode, o.errMessage = string(errs.BrokerUnavailable), "IBKR did not answer in time; nothing was sent"
	default:
		o.errCode, o.errMessage = string(errs.Internal), what
	}
	return o
}

// errText is an error's text for the status history; IBKR's errors never
// carry secrets.
func errText(err error) string {
	s := err.Error()
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}

// conid returns the ticker's US stock conid, from the cache or else from
// IBKR (and then cached: conids never change).
//
// The first confirms of a ticker in this process, which a market open
// sends together, look it up once: through the session of the first of
// them, while the others wait for its answer rather than each ask IBKR
// (whose contract searches are paced). One whose wait ends in that
// lookup's failure (the first user's session refused, their request
// gone) asks through its own session.
func (s *Service) conid(ctx context.Context, userID, ticker string) (int64, error) {
	if v, ok := s.conids.Load(ticker); ok {
		return v.(int64), nil
	}
	mine := false
	v, err, _ := s.conidLookups.Do(ticker, func() (any, error) {
		mine = true
		return s.lookupConid(ctx, userID, ticker)
	})
	if err != nil && !mine {
		v, err = s.lookupConid(ctx, userID, ticker)
	}
	if err != nil {
		return 0, err
	}
	return v.(int64), nil
}

// lookupConid is conid's lookup: the cache's row, else IBKR's answer
// through userID's session, stored in the cache.
func (s *Service) lookupConid(ctx context.Context, userID, ticker string) (int64, error) {
	var conid int64
	err := s.pool.QueryRow(ctx, `SELECT conid FROM conids WHERE ticker = $1`, ticker).Scan(&conid)
	if err == nil {
		s.conids.Store(ticker, conid)
		return conid, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		// The cache is only a cache: IBKR can answer without it.
		s.logger(ctx).Warn().Err(err).Str("ticker", ticker).Msg("conid cache unreadable; asking IBKR")
	}
	l, err := s.broker.ResolveContract(ctx, userID, ticker)
	if err != nil {
		return 0, err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO conids (ticker, conid, exchange, resolved_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (ticker) DO NOTHING`, ticker, l.Conid, l.Exchange, s.cfg.Now().UTC()); err != nil {
		// The lookup stands; caching is an optimization.
		s.logger(ctx).Warn().Err(err).Str("ticker", ticker).Msg("could not cache conid")
	} else {
		s.conids.Store(ticker, l.Conid)
	}
	return l.Conid, nil
}
