package ledger

import (
	"context"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/trading"
)

// Position is one holding of the account (GET /positions); amounts are
// decimals in the account's currency.
type Position struct {
	Ticker        string `json:"ticker"`
	Conid         int64  `json:"conid"`
	Quantity      string `json:"quantity"`
	AvgCost       string `json:"avg_cost"`
	MarketPrice   string `json:"market_price"`
	MarketValue   string `json:"market_value"`
	UnrealizedPnL string `json:"unrealized_pnl"`
	// Exit is the user's confirmed exit of the position still working at
	// IBKR, or nil.
	Exit *PositionExit `json:"exit"`
}

// PositionExit is a confirmed exit of a position.
type PositionExit struct {
	ConfirmationID string `json:"confirmation_id"`
	Status         string `json:"status"`
	Quantity       int64  `json:"quantity"`
}

// Positions returns the open positions of the user's account in mode (""
// means the active connection's), as IBKR values them, served from a
// short cache. Only the active connection can be asked: another mode is
// errs.Conflict.
func (s *Service) Positions(ctx context.Context, userID, mode string) ([]Position, error) {
	acct, err := s.cfg.Broker.ActiveAccount(ctx, userID)
	if err != nil {
		return nil, err
	}
	if mode != "" && trading.Mode(mode) != acct.Mode {
		return nil, errs.E(errs.Conflict, "positions are read from the active broker connection, which is %s; switch to %s in Settings → Broker to see its positions", acct.Mode, mode)
	}
	list, err := s.brokerPositions(ctx, userID, acct.Mode)
	if err != nil {
		return nil, err
	}
	exits, err := s.workingExits(ctx, userID, acct.Mode)
	if err != nil {
		return nil, err
	}
	out := make([]Position, 0, len(list))
	for _, p := range list {
		v := Position{Ticker: p.Ticker, Conid: p.Conid, Quantity: quantity(p.Quantity), AvgCost: amount(p.AvgCost, 4),
			MarketPrice: amount(p.MarketPrice, 4), MarketValue: amount(p.MarketValue, 2), UnrealizedPnL: amount(p.UnrealizedPnL, 2)}
		if e, ok := exits[strings.ToUpper(p.Ticker)]; ok {
			v.Exit = &e
		}
		out = append(out, v)
	}
	return out, nil
}

// brokerPositions returns IBKR's positions, from the cache when fresh.
func (s *Service) brokerPositions(ctx context.Context, userID string, mode trading.Mode) ([]trading.Position, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	c, ok := s.positions[userID]
	s.mu.Unlock()
	if ok && c.mode == mode && now.Sub(c.at) < s.cfg.PositionsTTL && now.Sub(c.at) >= 0 {
		return c.list, nil
	}
	// A look at the dashboard never signs the user's other login (Client
	// Portal, TWS) out: only an order takes the session back.
	list, err := s.cfg.Broker.Positions(trading.WithoutTakeBack(ctx), userID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	// Bounded by the users who look: one entry each, replaced in place.
	s.positions[userID] = cachedPositions{mode: mode, at: now, list: list}
	s.mu.Unlock()
	return list, nil
}

// ForgetPositions drops the user's cached positions (after a fill).
func (s *Service) ForgetPositions(userID string) {
	s.mu.Lock()
	delete(s.positions, userID)
	s.mu.Unlock()
}

// workingExits returns, by ticker, the user's newest exit confirmation of
// mode that is still working at IBKR.
func (s *Service) workingExits(ctx context.Context, userID string, mode trading.Mode) (map[string]PositionExit, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT DISTINCT ON (ticker) ticker, id::text, status, quantity
		FROM confirmations
		WHERE user_id = $1 AND mode = $2 AND side = 'SELL'
		  AND (status IN ('pending', 'submitted', 'unknown') OR status = 'partially_filled' AND open)
		ORDER BY ticker, created_at DESC`, userID, string(mode))
	if err != nil {
		return nil, fmt.Errorf("working exits: %w", err)
	}
	out := map[string]PositionExit{}
	var ticker string
	var e PositionExit
	_, err = pgx.ForEachRow(rows, []any{&ticker, &e.ConfirmationID, &e.Status, &e.Quantity}, func() error {
		out[ticker] = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("working exits: %w", err)
	}
	return out, nil
}

// quantity renders IBKR's share count ("10.0", 10) as a decimal ("10").
func quantity(n string) string {
	f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
	if err != nil {
		return "0"
	}
	return trimZeros(strconv.FormatFloat(f, 'f', 4, 64))
}

// amount renders one of IBKR's numbers (sent as floating point) as a
// decimal with places decimals; "" when IBKR sent none.
func amount(n string, places int) string {
	f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
	if err != nil {
		return ""
	}
	r := new(big.Rat)
	if r.SetFloat64(f) == nil {
		return ""
	}
	s := r.FloatString(places)
	if places > 2 {
		s = money(trimZeros(s))
	}
	if strings.Trim(s, "-0.") == "" {
		s = strings.TrimPrefix(s, "-")
	}
	return s
}
