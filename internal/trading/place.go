package trading

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
)

// maxAttempts bounds how often one confirmation's order is sent. A resend
// only follows an answer that proves IBKR did not take the order (an
// expired token, no brokerage session, 429, 5xx before sending), and it
// carries the same cOID, which IBKR never registers twice.
const maxAttempts = 3

// maxRetryAfter is the longest 429 wait a confirm sits out; a longer one
// fails the confirmation (the user is waiting for an answer).
const maxRetryAfter = 2 * time.Second

// place sends the previewed order for the committed pending confirmation id
// and records the outcome. It never fails: what cannot be recorded now is
// left for the reconciliation worker, and the confirmation is returned as
// "unknown".
func (s *Service) place(ctx context.Context, userID, id string, p Preview) Confirmation {
	// A client that hangs up must not cut an order off half-sent.
	ctx = context.WithoutCancel(ctx)
	octx, cancel := context.WithTimeout(ctx, s.cfg.OrderTimeout)
	o := s.send(octx, userID, id, p)
	cancel()
	c, err := s.record(ctx, id, o)
	if err != nil {
		s.log.Error().Err(err).Str("confirmation", id).Str("outcome", o.status).
			Msg("could not record an order outcome; reconciliation will settle it")
		c = Confirmation{ID: id, UserID: userID, SignalID: p.SignalID, Side: p.Side, Ticker: p.Ticker, Quantity: p.Quantity,
			OrderType: p.OrderType, TIF: p.TIF, LimitPrice: p.LimitPrice, Mode: p.Broker.Mode, AccountIDMasked: p.Broker.AccountIDMasked,
			Status: StatusUnknown, FilledQuantity: "0", CreatedAt: s.cfg.Now().UTC(), UpdatedAt: s.cfg.Now().UTC()}
	}
	return c
}

// record stores o on the pending row, retrying for a few seconds while the
// database is unreachable.
func (s *Service) record(ctx context.Context, id string, o outcome) (Confirmation, error) {
	var last error
	wait := 50 * time.Millisecond
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, changed, err := s.applyOutcome(ctx, id, []string{StatusPending}, o, s.cfg.Now().UTC())
		if err == nil {
			if !changed { // another instance's reconciliation got there first
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

// send places the order at IBKR, one order per account at a time, and
// classifies the answer.
func (s *Service) send(ctx context.Context, userID, id string, p Preview) outcome {
	unlock := s.accounts.lock(p.accountID)
	defer unlock()
	if s.cfg.AccountAdvisoryLock {
		release, err := s.advisoryLock(ctx, p.accountID)
		if err != nil {
			return failed(err, "could not take the account's order lock; nothing was sent")
		}
		defer release()
	}
	if p.Side == "SELL" {
		// Re-checked under the account's lock: another exit of the same
		// position may have been placed since the preview.
		left, err := s.exitQuantity(ctx, userID, *p.signal, id)
		if err != nil {
			return failed(err, "nothing was sent")
		}
		if left < p.Quantity {
			return outcome{status: StatusFailed, errCode: string(errs.Conflict),
				errMessage: fmt.Sprintf("only %d shares of this position are left to sell, not %d: another exit was placed meanwhile; nothing was sent, confirm again", left, p.Quantity),
				message:    "exit quantity changed; nothing sent"}
		}
	}
	var conid int64
	for attempt := 1; ; attempt++ {
		conn, err := s.broker.Session(ctx, userID)
		if err != nil {
			if attempt < maxAttempts && s.retry(ctx, userID, nil, err) {
				continue
			}
			return failed(err, "could not open the IBKR session; nothing was sent")
		}
		if conn.Account.ID != p.accountID || conn.Account.Mode != p.Broker.Mode {
			return outcome{status: StatusFailed, errCode: string(errs.Conflict),
				errMessage: "the active broker connection changed after the preview; nothing was sent, confirm again",
				message:    "broker connection changed; nothing sent"}
		}
		if conid == 0 {
			if conid, err = s.conid(ctx, conn.Session, p.Ticker); err != nil {
				if attempt < maxAttempts && s.retry(ctx, userID, conn.Session, err) {
					continue
				}
				return failed(err, "could not find the IBKR contract; nothing was sent")
			}
		}
		order := ibkr.Order{AcctID: conn.Account.ID, Conid: conid, COID: id, OrderType: p.OrderType, Side: p.Side,
			Quantity: p.Quantity, TIF: p.TIF}
		if p.LimitPrice != nil {
			order.Price = json.Number(*p.LimitPrice)
		}
		placed, err := conn.Session.PlaceOrder(ctx, conn.Account.ID, order, s.policy)
		if err == nil {
			return outcome{status: StatusSubmitted, conid: conid, brokerOrderID: placed.Order.OrderID,
				brokerStatus: placed.Order.OrderStatus, message: "IBKR accepted the order",
				nextCheck: s.cfg.Now().UTC().Add(s.cfg.ReconcileInterval)}
		}
		switch ibkr.KindOf(err) {
		case ibkr.KindOutcomeUnknown:
			return outcome{status: StatusUnknown, conid: conid, errCode: string(errs.BrokerOutcomeUnknown),
				errMessage: "the order was sent but IBKR's answer was lost; it is being looked up by its client order id",
				message:    "answer lost after sending: " + errText(err), nextCheck: s.cfg.Now().UTC()}
		case ibkr.KindDuplicateOrder:
			// IBKR already has this cOID: the order exists. Look it up.
			return outcome{status: StatusUnknown, conid: conid, errCode: string(errs.BrokerOutcomeUnknown),
				errMessage: "IBKR already has an order with this client order id; it is being looked up",
				message:    "duplicate client order id: " + errText(err), nextCheck: s.cfg.Now().UTC()}
		}
		if attempt < maxAttempts && s.retry(ctx, userID, conn.Session, err) {
			continue
		}
		return failed(err, "IBKR did not take the order")
	}
}

// retry decides whether an error proves the order was not taken and can be
// sent again, doing what must happen first (drop an expired session, sit
// out a short 429).
func (s *Service) retry(ctx context.Context, userID string, sess *ibkr.Session, err error) bool {
	kind := ibkr.KindOf(err)
	switch kind {
	case ibkr.KindTokenExpired, ibkr.KindNoBrokerageSession, ibkr.KindAccountsNotQueried:
		if sess != nil {
			s.broker.Invalidate(userID, sess, kind)
		}
		return true
	case ibkr.KindRateLimited:
		var e *ibkr.Error
		errors.As(err, &e)
		if e.RetryAfter > maxRetryAfter {
			return false
		}
		return sleep(ctx, e.RetryAfter)
	case ibkr.KindUnavailable:
		return sleep(ctx, 200*time.Millisecond)
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// failed is the outcome of an order that was not placed.
func failed(err error, what string) outcome {
	o := outcome{status: StatusFailed, message: what + ": " + errText(err)}
	var ie *ibkr.Error
	switch {
	case errors.As(err, &ie):
		o.errCode = ie.Kind.Code()
		o.errMessage = ie.Text
		if o.errMessage == "" {
			o.errMessage = what
		}
	case errs.As(err) != nil:
		e := errs.As(err)
		o.errCode, o.errMessage = string(e.Code), e.Message
	case errors.Is(err, ibkr.ErrNoUSListing) || errors.Is(err, ibkr.ErrAmbiguousListing):
		o.errCode, o.errMessage = string(errs.BrokerOrderRejected), err.Error()
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
func (s *Service) conid(ctx context.Context, sess *ibkr.Session, ticker string) (int64, error) {
	if v, ok := s.conids.Load(ticker); ok {
		return v.(int64), nil
	}
	var conid int64
	err := s.pool.QueryRow(ctx, `SELECT conid FROM conids WHERE ticker = $1`, ticker).Scan(&conid)
	if err == nil {
		s.conids.Store(ticker, conid)
		return conid, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		// The cache is only a cache: IBKR can answer without it.
		s.log.Warn().Err(err).Str("ticker", ticker).Msg("conid cache unreadable; asking IBKR")
	}
	l, err := sess.USStock(ctx, ticker)
	if err != nil {
		return 0, err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO conids (ticker, conid, exchange, resolved_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (ticker) DO NOTHING`, ticker, l.Conid, l.Exchange, s.cfg.Now().UTC()); err != nil {
		// The lookup stands; caching is an optimization.
		s.log.Warn().Err(err).Str("ticker", ticker).Msg("could not cache conid")
	} else {
		s.conids.Store(ticker, l.Conid)
	}
	return l.Conid, nil
}

// advisoryLock takes the account's session-level advisory lock on a
// connection of its own, for instances sharing one database. It is no
// transaction: the connection only holds the lock while IBKR is called.
func (s *Service) advisoryLock(ctx context.Context, accountID string) (func(), error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("account lock: %w", err)
	}
	const key = `hashtextextended('ordertune/ibkr-account/' || $1, 0)`
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(`+key+`)`, accountID); err != nil {
		conn.Release()
		return nil, fmt.Errorf("account lock: %w", err)
	}
	return func() {
		// A failed unlock (the database went away) ends the session, and
		// with it the lock: the connection is not returned to the pool.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock(`+key+`)`, accountID); err != nil {
			_ = conn.Conn().Close(uctx)
		}
		conn.Release()
	}, nil
}
