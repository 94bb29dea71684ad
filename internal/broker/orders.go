package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
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
	// Warm makes the user's session ready without using it.
	Warm(ctx context.Context, userID string) error
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
	s Sessions
	// policy returns the user's reply-question allowlist.
	policy func(ctx context.Context, userID string) (QuestionPolicy, error)
	// warmed holds the allowlist Warm read for the order about to be
	// placed (userID → warmedPolicy), which PlaceOrder takes.
	warmed sync.Map
}

// warmedPolicy is an allowlist read by Warm, and when.
type warmedPolicy struct {
	pol QuestionPolicy
	at  time.Time
}

// warmedFresh is how old an allowlist read by Warm may be for the order
// that follows to use it; an older one is read again.
const warmedFresh = 5 * time.Second

var _ trading.Broker = (*Orders)(nil)

// NewOrders returns Orders on s that confirm the reply questions whose
// message ids are allowed (the ids the sessions suppress at start).
func NewOrders(s Sessions, allowed []string) *Orders {
	allowed = slices.Clone(allowed)
	return &Orders{s: s, policy: func(context.Context, string) (QuestionPolicy, error) {
		return QuestionPolicy{Allowed: allowed}, nil
	}}
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

// Warm implements trading.Broker.
func (o *Orders) Warm(ctx context.Context, userID string) error {
	// The allowlist is read here too, for the order that follows: the
	// confirm calls Warm before taking the account's lock, and PlaceOrder
	// runs under it, holding a connection of the lock pool. Read there,
	// the allowlist waited for the main pool, and a busy main pool (a
	// market-open storm) kept the lock connections held until the lock
	// pool ran out (scripts/BENCHMARKS.md, fifth session, 3). An
	// admin's change still applies to every order confirmed after it.
	if pol, err := o.policy(ctx, userID); err == nil {
		o.warmed.Store(userID, warmedPolicy{pol: pol, at: time.Now()})
	}
	return o.s.Warm(ctx, userID)
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

// PlaceOrder implements trading.Broker. Every reply question IBKR asks is
// answered by the user's allowlist and returned with its answer: in the
// OrderState, or in a *trading.AnsweredError around the failure.
func (o *Orders) PlaceOrder(ctx context.Context, userID string, ord trading.Order) (trading.OrderState, error) {
	pol, err := o.orderPolicy(ctx, userID)
	if err != nil {
		return trading.OrderState{}, errs.Wrap(err, errs.Unavailable, "the reply-question allowlist could not be read; nothing was sent")
	}
	var asked []trading.Question
	st, err := o.placeOrder(ctx, userID, ord, recordingPolicy(pol, &asked), &asked)
	if err != nil && len(asked) > 0 {
		return st, &trading.AnsweredError{Questions: asked, Err: err}
	}
	st.Questions = asked
	return st, err
}

// orderPolicy returns the allowlist an order is placed by: the one Warm
// read just before, else a fresh read.
func (o *Orders) orderPolicy(ctx context.Context, userID string) (QuestionPolicy, error) {
	if v, ok := o.warmed.LoadAndDelete(userID); ok {
		if w := v.(warmedPolicy); time.Since(w.at) < warmedFresh {
			return w.pol, nil
		}
	}
	return o.policy(ctx, userID)
}

func (o *Orders) placeOrder(ctx context.Context, userID string, ord trading.Order, policy ibkr.ReplyPolicy, asked *[]trading.Question) (trading.OrderState, error) {
	var placed *ibkr.PlacedOrder
	err := retrying(ctx, func() error {
		return o.s.Do(ctx, userID, func(ctx context.Context, s *ibkr.Session, conn Conn) (err error) {
			// A repeated attempt asks its questions anew.
			*asked = (*asked)[:0]
			if conn.AccountID != ord.Account.ID || conn.Mode != ord.Account.Mode {
				return trading.ErrAccountChanged
			}
			io := ibkr.Order{AcctID: conn.AccountID, Conid: ord.Conid, COID: ord.COID, OrderType: string(ord.OrderType),
				Side: string(ord.Side), Quantity: ord.Quantity, TIF: ord.TIF}
			if ord.LimitPrice != nil {
				io.Price = json.Number(*ord.LimitPrice)
			}
			placed, err = s.PlaceOrder(ctx, conn.AccountID, io, policy)
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
	var ie *ibkr.Error
	if errors.As(err, &ie) && ie.Status == http.StatusNotFound {
		// IBKR forgot the order (a restart, another session's id): an
		// answer about the id, not about the order.
		return trading.OrderState{}, errs.Wrap(fmt.Errorf("%w: %w", trading.ErrOrderNotFound, err), errs.NotFound, ie.Text)
	}
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
		out = ofAccount(conn, list, func(l ibkr.LiveOrder) string { return l.Account }, func(l ibkr.LiveOrder) trading.OrderState {
			return trading.OrderState{OrderID: l.OrderID, COID: l.OrderRef, Status: l.Status,
				Filled: string(l.FilledQuantity), AvgPrice: string(l.AvgPrice)}
		})
		return nil
	})
	if err != nil {
		return nil, callError(err)
	}
	return out, nil
}

// Executions implements trading.Broker with IBKR's trades of the active
// account (an execution without an account is taken as the account's).
func (o *Orders) Executions(ctx context.Context, userID string, days int) ([]trading.Execution, error) {
	var out []trading.Execution
	err := retrying(ctx, func() error {
		return o.s.Do(ctx, userID, func(ctx context.Context, s *ibkr.Session, conn Conn) error {
			list, err := s.Trades(ctx, min(days, trading.MaxExecutionDays))
			if err != nil {
				return err
			}
			out = ofAccount(conn, list, func(t ibkr.Trade) string { return t.Account }, func(t ibkr.Trade) trading.Execution {
				e := trading.Execution{ID: t.ExecutionID, OrderID: t.OrderID, COID: t.OrderRef, Symbol: t.Symbol, Conid: t.Conid,
					Side: side(t.Side), Quantity: string(t.Size), Price: string(t.Price), Commission: string(t.Commission)}
				if t.TradeTimeMS > 0 {
					e.At = time.UnixMilli(t.TradeTimeMS).UTC()
				}
				return e
			})
			return nil
		})
	})
	if err != nil {
		return nil, callError(err)
	}
	slices.SortStableFunc(out, func(a, b trading.Execution) int { return a.At.Compare(b.At) })
	return out, nil
}

// ofAccount converts with conv the entries of list that belong to conn's
// account: IBKR may answer for every account of the login, and an entry
// that names no account is taken as the account's.
func ofAccount[W, T any](conn Conn, list []W, account func(W) string, conv func(W) T) []T {
	var out []T
	for _, w := range list {
		if a := account(w); a == "" || strings.EqualFold(a, conn.AccountID) {
			out = append(out, conv(w))
		}
	}
	return out
}

// side spells IBKR's "B"/"S" as BUY/SELL.
func side(s string) string {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "B", "BUY", "BOT":
		return "BUY"
	case "S", "SELL", "SLD":
		return "SELL"
	}
	return s
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
