package broker

import (
	"context"

	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/trading"
)

// Positions implements trading.Broker with IBKR's portfolio positions of
// the active account (primed by the portfolio account list, as IBKR
// demands). A position of another account is left out.
func (o *Orders) Positions(ctx context.Context, userID string) ([]trading.Position, error) {
	var out []trading.Position
	err := retrying(ctx, func() error {
		// The portfolio needs no brokerage session: while another login
		// holds it, a look at the positions runs on the live session
		// token rather than take the session back.
		return o.s.Do(withPortfolioOnly(ctx), userID, func(ctx context.Context, s *ibkr.Session, conn Conn) error {
			list, err := s.Positions(ctx, conn.AccountID)
			if err != nil {
				return err
			}
			out = ofAccount(conn, list, func(p ibkr.Position) string { return p.Account }, func(p ibkr.Position) trading.Position {
				return trading.Position{Conid: p.Conid, Ticker: p.Ticker, Quantity: string(p.Quantity),
					AvgCost: string(p.AvgCost), MarketPrice: string(p.MarketPrice), MarketValue: string(p.MarketValue),
					UnrealizedPnL: string(p.UnrealizedPnL)}
			})
			return nil
		})
	})
	if err != nil {
		return nil, callError(err)
	}
	return out, nil
}
