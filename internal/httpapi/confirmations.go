package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/trading"
)

func (s *Server) listConfirmations(c echo.Context) error {
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	list, next, err := s.trading.Confirmations(c.Request().Context(), principal(c).UserID, trading.ConfirmationFilter{
		Status: c.QueryParam("status"), Ticker: c.QueryParam("ticker"), Limit: limit, Cursor: c.QueryParam("cursor")})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newPage(list, next))
}

// getConfirmation answers the caller's own confirmation with its status
// history; anyone else's id is "not found".
func (s *Server) getConfirmation(c echo.Context) error {
	conf, err := s.trading.Confirmation(c.Request().Context(), principal(c).UserID, c.Param("id"))
	if err != nil {
		return err
	}
	conf.UserID = ""
	return c.JSON(http.StatusOK, conf)
}

// cancelConfirmation asks IBKR to cancel the order: 202, because IBKR
// takes a cancel as a request; the status follows when it happens.
func (s *Server) cancelConfirmation(c echo.Context) error {
	conf, err := s.trading.Cancel(c.Request().Context(), principal(c).UserID, c.Param("id"))
	if err != nil {
		return err
	}
	conf.UserID = ""
	return c.JSON(http.StatusAccepted, conf)
}
