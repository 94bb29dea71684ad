package httpapi

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/trading"
)

// tradingRoutes registers signals, settings, confirmations and the admin
// log and audit routes.
func (s *Server) tradingRoutes() {
	api := s.apiOf(s.trading != nil, "trading is not configured on this server")
	api(http.MethodGet, "/signals", reply(http.StatusOK, s.listSignals))
	api(http.MethodPost, "/signals", replyTo(http.StatusCreated, s.createSignal))
	api(http.MethodGet, "/signals/:id", reply(http.StatusOK, s.getSignal))
	api(http.MethodDelete, "/signals/:id", done(s.withdrawSignal))
	api(http.MethodGet, "/signals/:id/preview", reply(http.StatusOK, s.previewSignal))
	api(http.MethodPost, "/signals/:id/confirm", s.confirmSignal)

	api(http.MethodGet, "/settings", reply(http.StatusOK, s.getSettings))
	api(http.MethodPut, "/settings/position-size", replyTo(http.StatusOK, s.putPositionSize))

	api(http.MethodGet, "/confirmations", reply(http.StatusOK, s.listConfirmations))
	api(http.MethodGet, "/confirmations/:id", reply(http.StatusOK, s.getConfirmation))
	api(http.MethodPost, "/confirmations/:id/cancel", reply(http.StatusAccepted, s.cancelConfirmation))

	api(http.MethodGet, "/admin/confirmations", s.adminConfirmations)
	api(http.MethodGet, "/admin/confirmations/:id", reply(http.StatusOK, s.adminConfirmation))
	// The audit trail does not need the trading service.
	s.api(http.MethodGet, "/admin/audit", s.adminAudit)
	s.api(http.MethodGet, "/admin/audit/verify", s.adminAuditVerify)
}

// page is a list answer: {items, next_cursor}.
type page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func newPage[T any](items []T, next string) page[T] {
	p := page[T]{Items: items}
	if p.Items == nil {
		p.Items = []T{}
	}
	if next != "" {
		p.NextCursor = &next
	}
	return p
}

// queryLimit reads ?limit=; absent is 0 (the default).
func queryLimit(c echo.Context) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errs.Fields("invalid limit", errs.FieldError{Field: "limit", Message: "must be a whole number"})
	}
	return n, nil
}

func (s *Server) listSignals(c echo.Context) (page[trading.Signal], error) {
	limit, err := queryLimit(c)
	if err != nil {
		return page[trading.Signal]{}, err
	}
	list, next, err := s.trading.ListSignals(c.Request().Context(), principal(c).UserID, trading.SignalFilter{
		Status: c.QueryParam("status"), Limit: limit, Cursor: c.QueryParam("cursor")})
	if err != nil {
		return page[trading.Signal]{}, err
	}
	return newPage(list, next), nil
}

func (s *Server) createSignal(c echo.Context, in trading.NewSignal) (trading.Signal, error) {
	return s.trading.CreateSignal(c.Request().Context(), principal(c).UserID, in)
}

func (s *Server) getSignal(c echo.Context) (trading.Signal, error) {
	return s.trading.Signal(c.Request().Context(), c.Param("id"))
}

func (s *Server) withdrawSignal(c echo.Context) error {
	return s.trading.WithdrawSignal(c.Request().Context(), principal(c).UserID, c.Param("id"))
}

func (s *Server) previewSignal(c echo.Context) (trading.Preview, error) {
	return s.trading.Preview(c.Request().Context(), principal(c).UserID, c.Param("id"))
}

// confirmSignal answers 201 with the confirmation this request made, 200
// with the first result of a repeated request, and 202 while the order's
// outcome is not known (IBKR's answer was lost; reconciliation settles it).
func (s *Server) confirmSignal(c echo.Context) error {
	var in struct {
		Side string `json:"side"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	key := c.Request().Header.Get("Idempotency-Key")
	conf, replay, err := s.confirmOrDrain(c, principal(c).UserID, c.Param("id"), key, trading.Side(in.Side))
	conf.UserID = "" // the caller's own; only the admin log names owners
	if err != nil && conf.Status == trading.StatusFailed {
		// A failed confirmation is answered as a problem (IBKR's code and
		// text) that carries the recorded confirmation.
		return &failedConfirmation{err: err, conf: conf}
	}
	if err != nil {
		return err
	}
	st := http.StatusCreated
	switch {
	case conf.Status == trading.StatusUnknown || conf.Status == trading.StatusPending:
		st = http.StatusAccepted
	case replay:
		st = http.StatusOK
	}
	return c.JSON(st, conf)
}
