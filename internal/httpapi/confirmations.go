package httpapi

import (
	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/trading"
)

func (s *Server) listConfirmations(c echo.Context) (page[trading.Confirmation], error) {
	limit, err := queryLimit(c)
	if err != nil {
		return page[trading.Confirmation]{}, err
	}
	list, next, err := s.trading.Confirmations(c.Request().Context(), principal(c).UserID, trading.ConfirmationFilter{
		Status: c.QueryParam("status"), Ticker: c.QueryParam("ticker"), Limit: limit, Cursor: c.QueryParam("cursor")})
	if err != nil {
		return page[trading.Confirmation]{}, err
	}
	return newPage(list, next), nil
}

// getConfirmation answers the caller's own confirmation with its status
// history; anyone else's id is "not found".
func (s *Server) getConfirmation(c echo.Context) (trading.Confirmation, error) {
	return ownConfirmation(s.trading.Confirmation(c.Request().Context(), principal(c).UserID, c.Param("id")))
}

// cancelConfirmation asks IBKR to cancel the order: 202, because IBKR
// takes a cancel as a request; the status follows when it happens.
func (s *Server) cancelConfirmation(c echo.Context) (trading.Confirmation, error) {
	return ownConfirmation(s.trading.Cancel(c.Request().Context(), principal(c).UserID, c.Param("id")))
}

// ownConfirmation is a confirmation as its owner sees it: the owner is the
// caller, so the user id is left out (only the admin log names owners).
func ownConfirmation(conf trading.Confirmation, err error) (trading.Confirmation, error) {
	conf.UserID = ""
	return conf, err
}
