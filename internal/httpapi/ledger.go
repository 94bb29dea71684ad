package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ledger"
)

// ledgerRoutes registers positions, trades (executions) and P&L: the
// caller's own.
func (s *Server) ledgerRoutes() {
	api := s.apiOf(s.ledger != nil, "the ledger is not configured on this server")
	api(http.MethodGet, "/positions", reply(http.StatusOK, s.positions))
	api(http.MethodGet, "/trades", s.trades)
	api(http.MethodPost, "/trades/import", reply(http.StatusOK, s.importTrades))
	api(http.MethodGet, "/pnl", s.pnl)
}

func queryMode(c echo.Context) (string, error) {
	switch m := c.QueryParam("mode"); m {
	case "", "live", "paper":
		return m, nil
	}
	return "", errs.Fields("invalid mode", errs.FieldError{Field: "mode", Message: "must be live or paper"})
}

func (s *Server) positions(c echo.Context) (map[string]any, error) {
	mode, err := queryMode(c)
	if err != nil {
		return nil, err
	}
	list, err := s.ledger.Positions(c.Request().Context(), principal(c).UserID, mode)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []ledger.Position{}
	}
	return map[string]any{"items": list}, nil
}

// importTrades imports the caller's executions from IBKR now (the
// Portfolio page's Refresh) and answers what it did.
func (s *Server) importTrades(c echo.Context) (map[string]int, error) {
	res, err := s.ledger.Import(c.Request().Context(), principal(c).UserID)
	if err != nil {
		return nil, err
	}
	s.ledger.ForgetPositions(principal(c).UserID)
	return map[string]int{"read": res.Read, "stored": res.Stored, "skipped": res.Skipped, "recovered": res.Recovered}, nil
}

func tradeFilter(c echo.Context) (ledger.TradeFilter, error) {
	limit, err := queryLimit(c)
	if err != nil {
		return ledger.TradeFilter{}, err
	}
	f := ledger.TradeFilter{Ticker: strings.TrimSpace(c.QueryParam("ticker")), Limit: limit, Cursor: c.QueryParam("cursor")}
	if len(f.Ticker) > 20 {
		return f, errs.Fields("invalid ticker", errs.FieldError{Field: "ticker", Message: "at most 20 characters"})
	}
	if f.Mode, err = queryMode(c); err != nil {
		return f, err
	}
	if f.From, err = parseBound(c.QueryParam("from"), "from", false); err != nil {
		return f, err
	}
	if f.To, err = parseBound(c.QueryParam("to"), "to", true); err != nil {
		return f, err
	}
	return f, nil
}

// trades lists the caller's executions, newest first; format=csv
// downloads every matching one.
func (s *Server) trades(c echo.Context) error {
	f, err := tradeFilter(c)
	if err != nil {
		return err
	}
	return listOrCSV(c, func() error { return s.tradesCSV(c, f) }, func() ([]ledger.Trade, string, error) {
		return s.ledger.Trades(c.Request().Context(), principal(c).UserID, f)
	})
}

// tradesCSVHeader are the columns of the trades CSV: what a spreadsheet
// needs, in words (e-mail, ticker, strategy), without internal ids.
var tradesCSVHeader = []string{"executed_at", "user_email", "mode", "account", "ticker", "side", "quantity", "price", "commission",
	"strategy", "placed_by", "broker_execution_id", "broker_order_id"}

func (s *Server) tradesCSV(c echo.Context, f ledger.TradeFilter) error {
	ctx := c.Request().Context()
	p := principal(c)
	f.Limit = ledger.MaxLimit
	rows, err := allPages(ctx, func(ctx context.Context, cursor string) ([]ledger.Trade, string, error) {
		f.Cursor = cursor
		return s.ledger.Trades(ctx, p.UserID, f)
	}, "trades", "from, to, ticker")
	if err != nil {
		return err
	}
	records := make([][]string, len(rows))
	for i, t := range rows {
		by := "ordertune"
		if t.External {
			by = "external"
		}
		records[i] = []string{t.ExecutedAt.Format(time.RFC3339), p.Email, t.Mode, t.AccountIDMasked, t.Ticker, t.Side, t.Quantity, t.Price,
			deref(t.Commission), t.Strategy, by, t.BrokerExecutionID, deref(t.BrokerOrderID)}
	}
	return writeCSV(c, "trades", tradesCSVHeader, records)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// pnl is realized P&L grouped by day, month, strategy or ticker between
// two exchange days (from and to included).
func (s *Server) pnl(c echo.Context) error {
	f := ledger.PnLFilter{Group: c.QueryParam("group")}
	var err error
	if f.Mode, err = queryMode(c); err != nil {
		return err
	}
	for _, b := range []struct {
		name string
		to   *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		v := c.QueryParam(b.name)
		if v == "" {
			continue
		}
		d, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return errs.Fields("invalid "+b.name, errs.FieldError{Field: b.name, Message: "must be a date YYYY-MM-DD"})
		}
		*b.to = d
	}
	rows, err := s.ledger.PnL(c.Request().Context(), principal(c).UserID, f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"items": rows})
}
