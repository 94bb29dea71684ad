package trading

import (
	"context"
	"errors"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/rejection"
)

// Mode names a user's broker connection: each user has one for live
// trading and one for paper trading, and one of them is active.
type Mode string

// The two modes.
const (
	Live  Mode = "live"
	Paper Mode = "paper"
)

// ParseMode checks a mode given by a client.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case Live, Paper:
		return Mode(s), nil
	}
	return "", errs.E(errs.Invalid, "mode must be live or paper")
}

// Account is the IBKR account of a user's active broker connection.
type Account struct {
	Mode Mode
	// ID is the account id; it is shown to users only masked.
	ID string
	// Masked is the account id as users see it, e.g. "U•••4567".
	Masked string
}

// Contract is a ticker's US stock listing at the broker.
type Contract struct {
	Conid    int64
	Exchange string
}

// Order is one order to place.
type Order struct {
	// Account is the account the order was previewed for; the broker
	// refuses the order with ErrAccountChanged when the user's active
	// connection is another one now.
	Account   Account
	Conid     int64
	COID      string // the client order id: the confirmation's id
	OrderType OrderKind
	Side      Side
	Quantity  int64
	TIF       string
	// LimitPrice is a decimal, or nil for a market order.
	LimitPrice *string
}

// OrderState is what the broker says about an order.
type OrderState struct {
	OrderID string
	// COID is the client order id the order was placed with, when known.
	COID string
	// Status is the broker's own word: Submitted, Filled, Cancelled, ...
	Status string
	// Filled and AvgPrice are decimals; empty when the broker sent none.
	Filled, AvgPrice string
	// Questions are the reply questions the broker asked before taking
	// the order, with Ordertune's answers (PlaceOrder only).
	Questions []Question
}

// The answers to a reply question.
const (
	AnswerConfirmed = "confirmed"
	AnswerDeclined  = "declined"
)

// Question is a reply question the broker asked before taking an order
// ("the price exceeds the percentage constraint", "are you sure"), and
// Ordertune's answer by the user's allowlist.
type Question struct {
	MessageIDs []string `json:"message_ids"`
	// Text is the broker's own wording.
	Text string `json:"text"`
	// Answer is AnswerConfirmed or AnswerDeclined.
	Answer string `json:"answer"`
	// Reason says why: on the platform's allowlist, on the user's own, or
	// not on the allowlist in force.
	Reason string `json:"reason"`
}

// AnsweredError is a PlaceOrder failure after the broker asked reply
// questions: Questions are the questions and answers (the last one
// declined, when a question failed the order), Err the failure.
type AnsweredError struct {
	Questions []Question
	Err       error
}

func (e *AnsweredError) Error() string { return e.Err.Error() }

// Unwrap returns the failure.
func (e *AnsweredError) Unwrap() error { return e.Err }

// questionsOf returns the questions a PlaceOrder failure carries.
func questionsOf(err error) []Question {
	var ae *AnsweredError
	if errors.As(err, &ae) {
		return ae.Questions
	}
	return nil
}

// Execution is one fill the broker reports: part or all of an order.
type Execution struct {
	// ID is the broker's execution id, unique per fill.
	ID      string
	OrderID string
	// COID is the client order id of the order it filled.
	COID   string
	Symbol string
	Conid  int64
	// Side is BUY or SELL.
	Side string
	// Quantity, Price and Commission are decimals; Commission is empty
	// when the broker has not reported it yet.
	Quantity, Price, Commission string
	// At is when it executed; zero when the broker sent no readable time.
	At time.Time
}

// MaxExecutionDays is how far back the broker's executions reach (IBKR:
// the current day and the six before it).
const MaxExecutionDays = 7

// Broker is how the trading feature reaches the broker, in its own words.
// The broker package implements it on top of its per-tenant session
// cache, which keeps sessions ready and repairs them (and runs a refused
// call once more) when IBKR refuses them. Orders to one account must be
// serialized by the caller: the Service does it with its account lock.
//
// Errors are *errs.Error with a broker code (BrokerNotConnected,
// BrokerOrderRejected, BrokerRateLimited, ...) whose Message is the
// broker's own text when it sent one, or ErrAccountChanged. Later
// additions (what-if previews, executions, positions) belong here too.
type Broker interface {
	// ActiveAccount returns the account of the user's active connection
	// without calling the broker; errs.BrokerNotConnected when there is
	// none.
	ActiveAccount(ctx context.Context, userID string) (Account, error)
	// Warm makes the user's session ready for orders (for a cold one: the
	// handshake, the brokerage session, the accounts) and places nothing;
	// a ready session costs no call. The confirm calls it before taking
	// the account's lock, so that no lock and no pooled connection is
	// held while a session is made.
	Warm(ctx context.Context, userID string) error
	// ResolveContract returns the ticker's US stock listing; a ticker
	// without exactly one is errs.BrokerOrderRejected.
	ResolveContract(ctx context.Context, userID, ticker string) (Contract, error)
	// PlaceOrder places o and answers the broker's reply questions by the
	// allowlist. errs.BrokerOutcomeUnknown means the order was sent but the
	// answer was lost; wrapped with ErrDuplicateOrder it means the broker
	// already holds an order with o.COID. Neither may be sent again.
	PlaceOrder(ctx context.Context, userID string, o Order) (OrderState, error)
	// CancelOrder asks the broker to cancel orderID of the user's mode
	// connection and returns its acknowledgement; ErrAccountChanged when
	// mode is not the active connection. A refusal is errs.Conflict with
	// the broker's text.
	CancelOrder(ctx context.Context, userID string, mode Mode, orderID string) (string, error)
	// OrderStatus returns the state of orderID; ErrOrderNotFound when the
	// broker answers that it has no order with that id.
	OrderStatus(ctx context.Context, userID, orderID string) (OrderState, error)
	// LiveOrders returns the recent orders of the user's active account,
	// which the broker lists with their client order ids. The list covers
	// only the current brokerage session (IBKR empties it at its nightly
	// reset and on a new login): an order missing from it may still exist.
	LiveOrders(ctx context.Context, userID string) ([]OrderState, error)
	// Executions returns the fills of the user's active account over the
	// current day and the days-1 before it (at most MaxExecutionDays),
	// oldest first.
	Executions(ctx context.Context, userID string, days int) ([]Execution, error)
	// WhatIf asks the broker what placing o would do, without placing it.
	// The broker's refusal of the order is WhatIf.Refusal, not an error.
	WhatIf(ctx context.Context, userID string, o Order) (WhatIf, error)
	// Positions returns the open positions of the user's active account,
	// as the broker values them now.
	Positions(ctx context.Context, userID string) ([]Position, error)
}

// WithoutTakeBack marks the broker calls made with the returned context as
// ones that never take a user's IBKR session back from another login
// (Client Portal, TWS): work nobody waits on (reconciliation, the ledger's
// imports) and reads that only show something (the dashboard's positions).
// While another login holds the session, such a call fails with
// errs.BrokerSessionCompeting and sends nothing; the user's next order,
// preview or live price takes the session back, as their setting says.
func WithoutTakeBack(ctx context.Context) context.Context {
	return context.WithValue(ctx, noTakeBackKey{}, true)
}

// TakesBack reports whether the broker calls made with ctx may take the
// user's IBKR session back from another login (see WithoutTakeBack).
func TakesBack(ctx context.Context) bool {
	no, _ := ctx.Value(noTakeBackKey{}).(bool)
	return !no
}

type noTakeBackKey struct{}

// Position is one holding of an account as the broker reports it. The
// numbers are decimals as the broker sent them; empty when it sent none.
type Position struct {
	Conid  int64
	Ticker string
	// Quantity is negative for a short position.
	Quantity, AvgCost, MarketPrice, MarketValue, UnrealizedPnL string
}

// WhatIf is the broker's preview of an order: decimals in the account's
// currency, and the broker's warnings. Refusal is the broker's reason when
// it would not take the order (no trading permission, insufficient funds);
// the figures are then empty.
type WhatIf struct {
	Commission          string   `json:"commission"`
	InitialMarginChange string   `json:"initial_margin_change"`
	EquityWithLoanAfter string   `json:"equity_with_loan_after"`
	Warnings            []string `json:"warnings"`
	Refusal             *string  `json:"refusal"`
	// RefusalKind and RefusalAdvice put Refusal in the user's words
	// (package rejection); nil without a refusal.
	RefusalKind   *string `json:"refusal_kind,omitempty"`
	RefusalAdvice *string `json:"refusal_advice,omitempty"`
}

// explained returns w with its refusal's kind and advice.
func (w WhatIf) explained() WhatIf {
	if w.Refusal != nil {
		x := rejection.Explain(*w.Refusal)
		kind := string(x.Kind)
		w.RefusalKind, w.RefusalAdvice = &kind, &x.Advice
	}
	return w
}

// ErrAccountChanged means the user's active broker connection is no longer
// the account (or mode) an order was made for; nothing was sent.
var ErrAccountChanged = errors.New("the active broker connection changed")

// ErrOrderNotFound means the broker answered that it has no order with
// the id asked about. IBKR forgets orders (a restart, an id from another
// session), so it is no evidence that the order never existed: look the
// order up by its client order id instead.
var ErrOrderNotFound = errors.New("the broker has no order with this id")

// ErrServedElsewhere means another replica serves the user's broker
// session (it holds the session's lease): nothing was asked of the
// broker. The call succeeds there, or here once that replica lets the
// session go. Work that any replica may do (a background import) should
// be left to that replica rather than take the session from it.
var ErrServedElsewhere = errors.New("the user's broker session is served by another replica")

// ErrDuplicateOrder means the broker already holds an order with the
// client order id: the order exists and must be looked up, never re-sent.
var ErrDuplicateOrder = errors.New("duplicate client order id")

// NoBroker is a Broker for a server without IBKR access: every user is
// "not connected", so logs and settings work and nothing is ever sent.
type NoBroker struct{}

var errNoBroker = errs.E(errs.BrokerNotConnected, "this server has no broker access configured")

// ActiveAccount implements Broker.
func (NoBroker) ActiveAccount(context.Context, string) (Account, error) {
	return Account{}, errNoBroker
}

// Warm implements Broker.
func (NoBroker) Warm(context.Context, string) error { return errNoBroker }

// ResolveContract implements Broker.
func (NoBroker) ResolveContract(context.Context, string, string) (Contract, error) {
	return Contract{}, errNoBroker
}

// PlaceOrder implements Broker.
func (NoBroker) PlaceOrder(context.Context, string, Order) (OrderState, error) {
	return OrderState{}, errNoBroker
}

// CancelOrder implements Broker.
func (NoBroker) CancelOrder(context.Context, string, Mode, string) (string, error) {
	return "", errNoBroker
}

// OrderStatus implements Broker.
func (NoBroker) OrderStatus(context.Context, string, string) (OrderState, error) {
	return OrderState{}, errNoBroker
}

// LiveOrders implements Broker.
func (NoBroker) LiveOrders(context.Context, string) ([]OrderState, error) { return nil, errNoBroker }

// Executions implements Broker.
func (NoBroker) Executions(context.Context, string, int) ([]Execution, error) {
	return nil, errNoBroker
}

// Positions implements Broker.
func (NoBroker) Positions(context.Context, string) ([]Position, error) { return nil, errNoBroker }

// WhatIf implements Broker.
func (NoBroker) WhatIf(context.Context, string, Order) (WhatIf, error) { return WhatIf{}, errNoBroker }
