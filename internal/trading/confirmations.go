package trading

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/pagecursor"
	"github.com/ordertune/ordertune/internal/rejection"
)

// Status is where a confirmation stands.
type Status string

// Confirmation statuses.
const (
	StatusPending         Status = "pending"          // committed, IBKR not yet answered
	StatusSubmitted       Status = "submitted"        // IBKR took the order
	StatusFilled          Status = "filled"           // completely filled
	StatusPartiallyFilled Status = "partially_filled" // some filled (the rest working or cancelled)
	StatusCancelled       Status = "cancelled"        // cancelled with nothing filled
	StatusFailed          Status = "failed"           // not placed; Error says why
	StatusUnknown         Status = "unknown"          // sent, answer lost: reconciliation settles it
)

// Side is an order's side.
type Side string

// The sides: an entry signal buys, an exit signal sells.
const (
	Buy  Side = "BUY"
	Sell Side = "SELL"
)

// OrderKind is an order's type at IBKR.
type OrderKind string

// The order kinds the entry modes map to.
const (
	Market        OrderKind = "MKT" // market, on the open (tif OPG)
	Limit         OrderKind = "LMT" // limit, on the open (tif OPG)
	MarketOnClose OrderKind = "MOC" // market on close
)

// ConfirmationError is why a confirmation failed: a code of the error
// vocabulary and IBKR's own text where there is one. When IBKR refused the
// order, Kind and Advice say what kind of refusal its text is and what to
// do about it (package rejection); they are nil otherwise.
type ConfirmationError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Kind    *string `json:"kind,omitempty"`
	Advice  *string `json:"advice,omitempty"`
}

// newConfirmationError is a stored error as clients see it: IBKR's
// refusals come with their kind and advice.
func newConfirmationError(code, message string) *ConfirmationError {
	e := &ConfirmationError{Code: code, Message: message}
	if Refusal(code) {
		x := rejection.Explain(message)
		kind := string(x.Kind)
		e.Kind, e.Advice = &kind, &x.Advice
	}
	return e
}

// Refusal reports whether an error code means that IBKR refused the order
// (with its text as the message), as opposed to Ordertune not sending it
// or IBKR not answering.
func Refusal(code string) bool {
	return code == string(errs.BrokerOrderRejected) || code == string(errs.BrokerNoPermission)
}

// Event is one entry of a confirmation's status history.
type Event struct {
	At             time.Time `json:"at"`
	Status         Status    `json:"status"`
	BrokerStatus   *string   `json:"broker_status"`
	FilledQuantity *string   `json:"filled_quantity"`
	AvgFillPrice   *string   `json:"avg_fill_price"`
	ErrorCode      *string   `json:"error_code"`
	Message        string    `json:"message"`
	// Question is the reply question the broker asked at this point, and
	// Ordertune's answer; nil for a status change.
	Question *Question `json:"question,omitempty"`
}

// Confirmation is one Confirm click and the order it placed. Its ID is the
// IBKR client order id (cOID).
type Confirmation struct {
	ID              string             `json:"id"`
	UserID          string             `json:"user_id,omitempty"`
	SignalID        string             `json:"signal_id"`
	Side            Side               `json:"side"`
	Ticker          string             `json:"ticker"`
	Conid           *int64             `json:"conid"`
	Quantity        int64              `json:"quantity"`
	OrderType       OrderKind          `json:"order_type"`
	TIF             string             `json:"tif"`
	LimitPrice      *string            `json:"limit_price"`
	Mode            Mode               `json:"mode"`
	AccountIDMasked string             `json:"account_id_masked"`
	Status          Status             `json:"status"`
	BrokerOrderID   *string            `json:"broker_order_id"`
	BrokerStatus    *string            `json:"broker_status"`
	FilledQuantity  string             `json:"filled_quantity"`
	AvgFillPrice    *string            `json:"avg_fill_price"`
	Error           *ConfirmationError `json:"error"`
	CreatedAt       time.Time          `json:"created_at"`
	UpdatedAt       time.Time          `json:"updated_at"`
	// Commission is what IBKR charged for the order's executions so far
	// (a decimal), nil before the ledger has seen any.
	Commission *string `json:"commission"`
	// Closed reports whether this entry's exits have sold everything it
	// bought (the ledger's FIFO round trips); always false for an exit.
	Closed bool `json:"closed"`
	// Events is the status history, oldest first; set on single reads.
	Events []Event `json:"events,omitempty"`

	idemKey     string
	requestHash []byte
}

// confColumns are read by scanConfirmation, in order.
const confColumns = `c.id, c.user_id, c.signal_id, c.side, c.ticker, c.conid, c.quantity, c.order_type, c.tif,
	c.limit_price::text, c.mode, c.account_id_masked, c.status, c.broker_order_id, c.broker_status,
	c.filled_quantity::text, c.avg_fill_price::text, c.error_code, c.error_message, c.created_at, c.updated_at,
	c.idempotency_key, c.request_hash, c.commission::text, c.closed`

func scanConfirmation(row pgx.Row) (Confirmation, error) {
	var c Confirmation
	var code, msg *string
	err := row.Scan(&c.ID, &c.UserID, &c.SignalID, &c.Side, &c.Ticker, &c.Conid, &c.Quantity, &c.OrderType, &c.TIF,
		&c.LimitPrice, &c.Mode, &c.AccountIDMasked, &c.Status, &c.BrokerOrderID, &c.BrokerStatus,
		&c.FilledQuantity, &c.AvgFillPrice, &code, &msg, &c.CreatedAt, &c.UpdatedAt,
		&c.idemKey, &c.requestHash, &c.Commission, &c.Closed)
	if err != nil {
		return Confirmation{}, err
	}
	c.LimitPrice, c.AvgFillPrice = trimPtr(c.LimitPrice), trimPtr(c.AvgFillPrice)
	c.FilledQuantity = trimDecimal(c.FilledQuantity)
	c.Commission = moneyPtr(c.Commission)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	if code != nil {
		m := ""
		if msg != nil {
			m = *msg
		}
		c.Error = newConfirmationError(*code, m)
	}
	return c, nil
}

// rowQuerier is what pool and transaction share for reads.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// confirmation reads userID's confirmation id; another user's id is "not
// found". withEvents adds the status history.
func (s *Service) confirmation(ctx context.Context, q rowQuerier, userID, id string, withEvents bool) (Confirmation, error) {
	if !validID(id) {
		return Confirmation{}, errs.E(errs.NotFound, "no such confirmation")
	}
	c, err := scanConfirmation(q.QueryRow(ctx, `SELECT `+confColumns+` FROM confirmations c WHERE c.user_id = $1 AND c.id = $2`, userID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Confirmation{}, errs.E(errs.NotFound, "no such confirmation")
	}
	if err != nil {
		return Confirmation{}, fmt.Errorf("read confirmation %s: %w", id, err)
	}
	if withEvents {
		if c.Events, err = events(ctx, q, id); err != nil {
			return Confirmation{}, err
		}
	}
	return c, nil
}

func events(ctx context.Context, q rowQuerier, id string) ([]Event, error) {
	rows, err := q.Query(ctx, `
		SELECT at, status, broker_status, filled_quantity::text, avg_fill_price::text, error_code, message, question
		FROM confirmation_events WHERE confirmation_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("read status history of %s: %w", id, err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		err := r.Scan(&e.At, &e.Status, &e.BrokerStatus, &e.FilledQuantity, &e.AvgFillPrice, &e.ErrorCode, &e.Message, &e.Question)
		e.At = e.At.UTC()
		e.FilledQuantity, e.AvgFillPrice = trimPtr(e.FilledQuantity), trimPtr(e.AvgFillPrice)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read status history of %s: %w", id, err)
	}
	return list, nil
}

// Confirmation returns userID's confirmation id with its status history.
func (s *Service) Confirmation(ctx context.Context, userID, id string) (Confirmation, error) {
	return s.confirmation(ctx, s.pool, userID, id, true)
}

// ConfirmationFilter selects confirmations for the logs.
type ConfirmationFilter struct {
	// UserID restricts the admin log to one user; the user's own log always
	// has it set.
	UserID string
	Status string
	Ticker string
	// From and To bound created_at (From inclusive, To exclusive); zero
	// means unbounded.
	From, To time.Time
	Limit    int
	Cursor   string

	userEmail string
}

var statuses = map[Status]bool{StatusPending: true, StatusSubmitted: true, StatusFilled: true, StatusPartiallyFilled: true,
	StatusCancelled: true, StatusFailed: true, StatusUnknown: true}

// Confirmations lists userID's own confirmations, newest first.
func (s *Service) Confirmations(ctx context.Context, userID string, f ConfirmationFilter) ([]Confirmation, string, error) {
	f.UserID = userID
	list, next, err := s.listConfirmations(ctx, f)
	for i := range list {
		list[i].UserID = ""
	}
	return list, next, err
}

// AllConfirmations is the admin log: every user's confirmations, newest
// first, filtered. A user filter that is not an id matches every user
// whose e-mail address contains it, in any case.
func (s *Service) AllConfirmations(ctx context.Context, f ConfirmationFilter) ([]Confirmation, string, error) {
	if f.UserID != "" && !validID(f.UserID) {
		// Anything but an id is a search in the e-mail addresses.
		f.userEmail, f.UserID = f.UserID, ""
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return nil, "", errs.Fields("invalid filter", errs.FieldError{Field: "to", Message: "must not be before from"})
	}
	return s.listConfirmations(ctx, f)
}

func (s *Service) listConfirmations(ctx context.Context, f ConfirmationFilter) ([]Confirmation, string, error) {
	limit, cur, err := parsePage(f.Limit, f.Cursor)
	if err != nil {
		return nil, "", err
	}
	if f.Status != "" && !statuses[Status(f.Status)] {
		return nil, "", errs.Fields("invalid filter", errs.FieldError{Field: "status", Message: "must be one of pending, submitted, filled, partially_filled, cancelled, failed, unknown"})
	}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	where := "true"
	if f.UserID != "" {
		where += " AND c.user_id = " + arg(f.UserID)
	}
	if f.userEmail != "" {
		where += " AND c.user_id IN (SELECT id FROM users WHERE strpos(lower(email), lower(" + arg(strings.TrimSpace(f.userEmail)) + ")) > 0)"
	}
	if f.Status != "" {
		where += " AND c.status = " + arg(f.Status)
	}
	if f.Ticker != "" {
		where += " AND c.ticker = upper(" + arg(f.Ticker) + ")"
	}
	if !f.From.IsZero() {
		where += " AND c.created_at >= " + arg(f.From)
	}
	if !f.To.IsZero() {
		where += " AND c.created_at < " + arg(f.To)
	}
	if cur != nil {
		where += fmt.Sprintf(" AND (c.created_at, c.id) < (%s, %s)", arg(cur.At), arg(cur.ID))
	}
	rows, err := s.pool.Query(ctx, `SELECT `+confColumns+` FROM confirmations c WHERE `+where+
		` ORDER BY c.created_at DESC, c.id DESC LIMIT `+arg(limit+1), args...)
	if err != nil {
		return nil, "", fmt.Errorf("list confirmations: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Confirmation, error) { return scanConfirmation(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list confirmations: %w", err)
	}
	next := ""
	if len(list) > limit {
		list = list[:limit]
		last := list[limit-1]
		next = pagecursor.Encode(last.CreatedAt, last.ID)
	}
	if list == nil {
		list = []Confirmation{}
	}
	return list, next, nil
}

// AnyConfirmation is one confirmation of any user with its status history,
// for the admin log; UserID names its owner.
func (s *Service) AnyConfirmation(ctx context.Context, id string) (Confirmation, error) {
	if !validID(id) {
		return Confirmation{}, errs.E(errs.NotFound, "no such confirmation")
	}
	var owner string
	err := s.pool.QueryRow(ctx, `SELECT user_id::text FROM confirmations WHERE id = $1`, id).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return Confirmation{}, errs.E(errs.NotFound, "no such confirmation")
	}
	if err != nil {
		return Confirmation{}, fmt.Errorf("read confirmation %s: %w", id, err)
	}
	return s.confirmation(ctx, s.pool, owner, id, true)
}

// UserEmails returns the e-mail address of each of the users ids names
// (the admin log's CSV names people, not ids).
func (s *Service) UserEmails(ctx context.Context, ids []string) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id::text, email FROM users WHERE id::text = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("user emails: %w", err)
	}
	out := make(map[string]string, len(ids))
	var id, email string
	_, err = pgx.ForEachRow(rows, []any{&id, &email}, func() error {
		out[id] = email
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("user emails: %w", err)
	}
	return out, nil
}
