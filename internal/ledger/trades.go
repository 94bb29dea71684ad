package ledger

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ids"
	"github.com/ordertune/ordertune/internal/pagecursor"
)

// Trade is one stored execution (GET /trades).
type Trade struct {
	ID         string    `json:"id"`
	ExecutedAt time.Time `json:"executed_at"`
	Ticker     string    `json:"ticker"`
	Side       string    `json:"side"`
	Quantity   string    `json:"quantity"`
	Price      string    `json:"price"`
	// Commission is nil while IBKR has not reported it.
	Commission *string `json:"commission"`
	// ConfirmationID is nil for an execution not placed through
	// Ordertune (External).
	ConfirmationID    *string `json:"confirmation_id"`
	BrokerExecutionID string  `json:"broker_execution_id"`
	BrokerOrderID     *string `json:"broker_order_id"`
	Mode              string  `json:"mode"`
	AccountIDMasked   string  `json:"account_id_masked"`
	// External reports whether the order was placed elsewhere (IBKR's own
	// apps, another program); such a trade is never attributed to a
	// signal.
	External bool `json:"external"`
	// Strategy is the strategy of the confirmation's signal; "" when
	// External.
	Strategy string `json:"strategy"`
}

// TradeFilter selects trades; zero fields select everything.
type TradeFilter struct {
	// From and To bound executed_at: [From, To).
	From, To time.Time
	Ticker   string
	Mode     string
	// Limit is the page size (0: DefaultLimit, at most MaxLimit).
	Limit  int
	Cursor string
}

// DefaultLimit and MaxLimit bound a page of trades.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Trades lists the user's executions, newest first, a page at a time; the
// returned cursor is "" after the last page.
func (s *Service) Trades(ctx context.Context, userID string, f TradeFilter) ([]Trade, string, error) {
	limit := f.Limit
	switch {
	case limit == 0:
		limit = DefaultLimit
	case limit < 0 || limit > MaxLimit:
		return nil, "", errs.Fields("invalid limit", errs.FieldError{Field: "limit", Message: "must be between 1 and " + strconv.Itoa(MaxLimit)})
	}
	cur, err := pagecursor.Decode(f.Cursor)
	if err != nil {
		return nil, "", err
	}
	args := []any{userID, nullTime(f.From), nullTime(f.To), strings.ToUpper(strings.TrimSpace(f.Ticker)), f.Mode, limit + 1}
	var curAt *time.Time
	var curID *string
	if cur != nil {
		curAt, curID = &cur.At, &cur.ID
	}
	args = append(args, curAt, curID)
	rows, err := s.pool.Query(ctx, `
		SELECT e.id::text, e.executed_at, e.ticker, e.side, e.quantity::text, e.price::text, e.commission::text,
			e.confirmation_id::text, e.broker_execution_id, e.broker_order_id, e.mode, e.account_id_masked, e.external,
			coalesce(g.strategy, '')
		FROM executions e
		LEFT JOIN confirmations c ON c.id = e.confirmation_id AND c.user_id = e.user_id
		LEFT JOIN signals g ON g.id = c.signal_id
		WHERE e.user_id = $1
		  AND ($2::timestamptz IS NULL OR e.executed_at >= $2)
		  AND ($3::timestamptz IS NULL OR e.executed_at < $3)
		  AND ($4 = '' OR e.ticker = $4)
		  AND ($5 = '' OR e.mode = $5)
		  AND ($7::timestamptz IS NULL OR (e.executed_at, e.id) < ($7, $8::uuid))
		ORDER BY e.executed_at DESC, e.id DESC
		LIMIT $6`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list trades: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanTrade)
	if err != nil {
		return nil, "", fmt.Errorf("list trades: %w", err)
	}
	next := ""
	if len(list) > limit {
		list = list[:limit]
		last := list[len(list)-1]
		next = pagecursor.Encode(last.ExecutedAt, last.ID)
	}
	return list, next, nil
}

// scanTrade reads a trade's columns as Trades selects them.
func scanTrade(r pgx.CollectableRow) (Trade, error) {
	var t Trade
	err := r.Scan(&t.ID, &t.ExecutedAt, &t.Ticker, &t.Side, &t.Quantity, &t.Price, &t.Commission, &t.ConfirmationID,
		&t.BrokerExecutionID, &t.BrokerOrderID, &t.Mode, &t.AccountIDMasked, &t.External, &t.Strategy)
	t.ExecutedAt = t.ExecutedAt.UTC()
	t.Quantity, t.Price = trimZeros(t.Quantity), money(trimZeros(t.Price))
	if t.Commission != nil {
		c := money(trimZeros(*t.Commission))
		t.Commission = &c
	}
	return t, err
}

// money keeps at least two decimals of a trimmed decimal ("1" → "1.00").
func money(s string) string {
	whole, frac, _ := strings.Cut(s, ".")
	for len(frac) < 2 {
		frac += "0"
	}
	return whole + "." + frac
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// maxOrderExecutions bounds the executions listed for one order: IBKR
// splits an order into a handful of fills, an auction's into one.
const maxOrderExecutions = 500

// OrderExecutions lists the executions that filled the user's
// confirmation, oldest first (the order detail). Another user's
// confirmation, one without executions or an id that is none lists none.
func (s *Service) OrderExecutions(ctx context.Context, userID, confirmationID string) ([]Trade, error) {
	if !ids.Valid(confirmationID) {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `
		SELECT e.id::text, e.executed_at, e.ticker, e.side, e.quantity::text, e.price::text, e.commission::text,
			e.confirmation_id::text, e.broker_execution_id, e.broker_order_id, e.mode, e.account_id_masked, e.external,
			coalesce(g.strategy, '')
		FROM executions e
		JOIN confirmations c ON c.id = e.confirmation_id AND c.user_id = e.user_id
		LEFT JOIN signals g ON g.id = c.signal_id
		WHERE e.user_id = $1
		  AND e.confirmation_id = $2
		ORDER BY e.executed_at, e.broker_execution_id
		LIMIT $3`, userID, confirmationID, maxOrderExecutions)
	if err != nil {
		return nil, fmt.Errorf("list the executions of %s: %w", confirmationID, err)
	}
	list, err := pgx.CollectRows(rows, scanTrade)
	if err != nil {
		return nil, fmt.Errorf("list the executions of %s: %w", confirmationID, err)
	}
	return list, nil
}
