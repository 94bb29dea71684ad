package httpapi

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/trading"
)

// adminConfirmations is the admin log: every user's confirmations with
// filters user (id or e-mail), status, ticker, from and to (dates, to
// inclusive, or RFC 3339 times), paginated; format=csv downloads every
// matching row as CSV.
func (s *Server) adminConfirmations(c echo.Context) error {
	f, err := adminFilter(c)
	if err != nil {
		return err
	}
	return listOrCSV(c, func() error { return s.adminConfirmationsCSV(c, f) }, func() ([]trading.Confirmation, string, error) {
		return s.trading.AllConfirmations(c.Request().Context(), f)
	})
}

func adminFilter(c echo.Context) (trading.ConfirmationFilter, error) {
	limit, err := queryLimit(c)
	if err != nil {
		return trading.ConfirmationFilter{}, err
	}
	f := trading.ConfirmationFilter{UserID: strings.TrimSpace(c.QueryParam("user")), Status: c.QueryParam("status"),
		Ticker: strings.TrimSpace(c.QueryParam("ticker")), Limit: limit, Cursor: c.QueryParam("cursor")}
	if f.From, err = parseBound(c.QueryParam("from"), "from", false); err != nil {
		return f, err
	}
	if f.To, err = parseBound(c.QueryParam("to"), "to", true); err != nil {
		return f, err
	}
	return f, nil
}

// parseBound reads a date (YYYY-MM-DD, UTC) or an RFC 3339 time. A "to"
// date includes its whole day.
func parseBound(v, field string, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.Parse(time.DateOnly, v); err == nil {
		if end {
			d = d.AddDate(0, 0, 1)
		}
		return d, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, errs.Fields("invalid filter", errs.FieldError{Field: field, Message: "must be a date YYYY-MM-DD or an RFC 3339 time"})
}

var csvHeader = []string{"id", "created_at", "updated_at", "user_id", "user_email", "signal_id", "ticker", "side", "quantity", "order_type", "tif",
	"limit_price", "mode", "account_id_masked", "status", "broker_order_id", "broker_status", "filled_quantity", "avg_fill_price",
	"error_code", "error_message"}

// adminConfirmation is one confirmation of any user, with its status
// history and its owner.
func (s *Server) adminConfirmation(c echo.Context) (confirmationDetail, error) {
	conf, err := s.trading.AnyConfirmation(c.Request().Context(), c.Param("id"))
	if err != nil {
		return confirmationDetail{}, err
	}
	return s.confirmationDetail(c.Request().Context(), conf.UserID, conf)
}

func (s *Server) adminConfirmationsCSV(c echo.Context, f trading.ConfirmationFilter) error {
	ctx := c.Request().Context()
	f.Limit = trading.MaxLimit
	rows, err := allPages(ctx, func(ctx context.Context, cursor string) ([]trading.Confirmation, string, error) {
		f.Cursor = cursor
		return s.trading.AllConfirmations(ctx, f)
	}, "confirmations", "from, to, user")
	if err != nil {
		return err
	}
	err = s.auditAdmin(c, "confirmations.export", map[string]any{"user": auditText(f.UserID), "status": auditText(f.Status),
		"ticker": auditText(f.Ticker), "from": bound(f.From), "to": bound(f.To), "rows": len(rows)})
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(rows))
	seen := make(map[string]bool)
	for _, r := range rows {
		if !seen[r.UserID] {
			seen[r.UserID] = true
			ids = append(ids, r.UserID)
		}
	}
	emails, err := s.trading.UserEmails(ctx, ids)
	if err != nil {
		return err
	}
	records := make([][]string, len(rows))
	for i, r := range rows {
		records[i] = csvRecord(r, emails[r.UserID])
	}
	return writeCSV(c, "confirmations", csvHeader, records)
}

// bound is a time filter as an export's audit row records it.
func bound(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func csvRecord(r trading.Confirmation, email string) []string {
	opt := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	code, msg := "", ""
	if r.Error != nil {
		code, msg = r.Error.Code, r.Error.Message
	}
	rec := []string{r.ID, r.CreatedAt.Format(time.RFC3339Nano), r.UpdatedAt.Format(time.RFC3339Nano), r.UserID, email, r.SignalID, r.Ticker, string(r.Side),
		strconv.FormatInt(r.Quantity, 10), string(r.OrderType), r.TIF, opt(r.LimitPrice), string(r.Mode), r.AccountIDMasked, string(r.Status),
		opt(r.BrokerOrderID), opt(r.BrokerStatus), r.FilledQuantity, opt(r.AvgFillPrice), code, msg}
	return rec
}
