package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/trading"
)

// DefaultAllowedQuestions are the reply-question message ids that are
// suppressed at brokerage-session start and confirmed when IBKR still asks
// them: price constraint, no market data, tick and size limits, immediate
// fill, value limit, market order risk and cap price.
func DefaultAllowedQuestions() []string {
	return []string{"o163", "o354", "o382", "o383", "o403", "o451", "o10151", "o10153"}
}

// Sessions hands out users' ready IBKR sessions: the Service's session
// cache, or a test's stand-in.
type Sessions interface {
	// ActiveAccount returns the account of the user's active connection
	// without calling IBKR.
	ActiveAccount(ctx context.Context, userID string) (Account, error)
	// Do runs fn with the user's ready session; when IBKR refused the
	// session, Do repairs it and runs fn once more (see Repairing).
	Do(ctx context.Context, userID string, fn func(ctx context.Context, s *ibkr.Session, conn Conn) error) error
}

// Orders is the trading feature's Broker: each call runs on a ready
// session from Sessions, which repairs refused sessions; Orders adds the
// waits a trading call sits out (a short 429, a 5xx before sending), the
// reply-question allowlist, and the translation of IBKR's failures into
// errs codes that keep IBKR's text.
type Orders struct {
	s      Sessions
	policy ibkr.ReplyPolicy
}

var _ trading.Broker = (*Orders)(nil)

// NewOrders returns Orders on s that confirm the reply questions whose
// message ids are allowed (the ids the sessions suppress at start).
func NewOrders(s Sessions, allowed []string) *Orders {
	return &Orders{s: s, policy: ibkr.ConfirmMessageIDs(allowed...)}
}

// maxAttempts bounds how often one call is sent. A resend only follows an
// answer that proves IBKR did not act on the request (429, 5xx before
// sending); an order carries the same cOID, which IBKR never registers
// twice.
const maxAttempts = 3

// maxRetryAfter is the longest 429 wait a call sits out; a longer one
// fails the call (the user is waiting for an answer).
const maxRetryAfter = 2 * time.Second

// retrying runs call until it succeeds, fails for good, or has run
// maxAttempts times.
func retrying(ctx context.Context, call func() error) error {
	for attempt := 1; ; attempt++ {
		err := call()
		if err == nil || attempt == maxAttempts || !again(ctx, err) {
			return err
		}
	}
}

// again reports whether err proves the request was not acted on and may be
// sent again, after sitting out what IBKR asked for.
func again(ctx context.Context, err error) bool {
	var ie *ibkr.Error
	if !errors.As(err, &ie) {
		return false
	}
	switch ie.Kind {
	case ibkr.KindRateLimited:
		return ie.RetryAfter <= maxRetryAfter && sleep(ctx, ie.RetryAfter)
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

// callError gives an IBKR failure its errs code with IBKR's own text as
// the message (IBKR never echoes secrets); other errors pass unchanged.
func callError(err error) error {
	var ie *ibkr.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		return &errs.Error{Code: ie.Kind.Code(), Message: ie.Text, RetryAfter: ie.RetryAfter, Err: err}
	case errors.Is(err, ibkr.ErrNoUSListing) || errors.Is(err, ibkr.ErrAmbiguousListing):
		return errs.Wrap(err, errs.BrokerOrderRejected, err.Error())
	}
	return err
}

// ActiveAccount implements trading.Broker.
func (o *Orders) ActiveAccount(ctx context.Context, userID string) (Account, error) {
	return o.s.ActiveAccount(ctx, userID)
}

// ResolveContract implements trading.Broker with IBKR's US stock listing.
func (o *Orders) ResolveContract(ctx context.Context, userID, ticker string) (trading.Contract, error) {
	var l ibkr.Listing
	err := retrying(ctx, func() error {
		return o.s.Do(ctx, userID, func(ctx context.Context, s *ibkr.Session, _ Conn) (err error) {
			l, err = s.USStock(ctx, ticker)
			return err
		})
	})
	if err != nil {
		return trading.Contract{}, callError(err)
	}
	return trading.Contract{Conid: l.Conid, Exchange: l.Exchange}, nil
}

// PlaceOrder implements trading.Broker.
func (o *Orders) PlaceOrder(ctx context.Context, userID string, ord trading.Order) (trading.OrderState, error) {
	var placed *ibkr.PlacedOrder
	err := retrying(ctx, func() error {
		return o.s.Do(ctx, userID, func(ctx context.Context, s *ibkr.Session, conn Conn) (err error) {
			if conn.AccountID != ord.Account.ID || conn.Mode != ord.Account.Mode {
				return trading.ErrAccountChanged
			}
			io := ibkr.Order{AcctID: conn.AccountID, Conid: ord.Conid, COID: ord.COID, OrderType: string(ord.OrderType),
				Side: string(ord.Side), Quantity: ord.Quantity, TIF: ord.TIF}
			if ord.LimitPrice != nil {
				io.Price = json.Number(*ord.LimitPrice)
			}
			placed, err = s.PlaceOrder(ctx, conn.AccountID, io, o.policy)
			return err
		})
	})
	if err != nil {
		if ibkr.KindOf(err) == ibkr.KindDuplicateOrder {
			var ie *ibkr.Error
			errors.As(err, &ie)
			return trading.OrderState{}, errs.Wrap(fmt.Errorf("%w: %w", trading.ErrDuplicateOrder, err), errs.BrokerOutcomeUnknown, ie.Text)
		}
		return trading.OrderState{}, callError(err)
	}
	return trading.OrderState{OrderID: placed.Order.OrderID, COID: ord.COID, Status: placed.Order.OrderStatus}, nil
}

// CancelOrder implements trading.Broker. IBKR refusing the cancel (the
// order is done, or unknown to it) is errs.Conflict with IBKR's text.
func (o *Orders) CancelOrder(ctx context.Context, userID string, mode Mode, orderID string) (string, error) {
	var res ibkr.CancelResult
	err := retrying(ctx, func() error {
		return o.s.Do(ctx, userID, func(ctx context.Context, s *ibkr.Session, conn Conn) error {
			if conn.Mode != mode {
				return trading.ErrAccountChanged
			}
			var err error
			res, err = s.CancelOrder(ctx, conn.AccountID, orderID)
			var ie *ibkr.Error
			if errors.As(err, &ie) {
				code := ie.Kind.Code()
				if ie.Kind == ibkr.KindOrderRejected || ie.Kind == ibkr.KindRequestFailed {
					code = errs.Conflict
				}
				return &errs.Error{Code: code, Message: "IBKR did not take the cancel request: " + ie.Text, Err: err}
			}
			return err
		})
	})
	return res.Message, err
}

// OrderStatus implements trading.Broker.
func (o *Orders) OrderStatus(ctx context.Context, userID, orderID string) (trading.OrderState, error) {
	var st ibkr.OrderStatus
	err := o.s.Do(ctx, userID, func(ctx context.Context, s *ibkr.Session, _ Conn) (err error) {
		st, err = s.OrderStatus(ctx, orderID)
		return err
	})
	if err != nil {
		return trading.OrderState{}, callError(err)
	}
	return trading.OrderState{OrderID: st.OrderID, Status: st.Status, Filled: string(st.CumFill), AvgPrice: string(st.AvgPrice)}, nil
}

// LiveOrders implements trading.Broker with IBKR's live orders of the
// active account (an order without an account is taken as the account's).
func (o *Orders) LiveOrders(ctx context.Context, userID string) ([]trading.OrderState, error) {
	var out []trading.OrderState
	err := o.s.Do(ctx, userID, func(ctx context.Context, s *ibkr.Session, conn Conn) error {
		list, err := s.LiveOrders(ctx)
		if err != nil {
			return err
		}
		out = out[:0]
		for _, l := range list {
			if l.Account == "" || strings.EqualFold(l.Account, conn.AccountID) {
				out = append(out, trading.OrderState{OrderID: l.OrderID, COID: l.OrderRef, Status: l.Status,
					Filled: string(l.FilledQuantity), AvgPrice: string(l.AvgPrice)})
			}
		}
		return nil
	})
	if err != nil {
		return nil, callError(err)
	}
	return out, nil
}

// WhatIf implements trading.Broker with IBKR's what-if preview of the order
// on the user's active account.
func (o *Orders) WhatIf(ctx context.Context, userID string, ord trading.Order) (trading.WhatIf, error) {
	var w ibkr.WhatIf
	err := retrying(ctx, func() error {
		return o.s.Do(ctx, userID, func(ctx context.Context, s *ibkr.Session, conn Conn) (err error) {
			io := ibkr.Order{AcctID: conn.AccountID, Conid: ord.Conid, OrderType: string(ord.OrderType),
				Side: string(ord.Side), Quantity: ord.Quantity, TIF: ord.TIF}
			if ord.LimitPrice != nil {
				io.Price = json.Number(*ord.LimitPrice)
			}
			w, err = s.WhatIf(ctx, conn.AccountID, io)
			return err
		})
	})
	if err != nil {
		return trading.WhatIf{}, callError(err)
	}
	out := trading.WhatIf{Commission: w.Commission, InitialMarginChange: w.InitialMarginChange,
		EquityWithLoanAfter: w.EquityWithLoanAfter, Warnings: w.Warnings}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	if w.Refusal != "" {
		out.Refusal = &w.Refusal
	}
	return out, nil
}
