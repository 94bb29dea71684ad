package httpapi

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/ledger"
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
	d, err := s.confirmationDetail(c.Request().Context(), principal(c).UserID, conf)
	if err != nil {
		return err
	}
	d.UserID = ""
	return c.JSON(http.StatusOK, d)
}

// confirmationDetail is a confirmation's single read: its status history
// and the executions that filled its order, with their commissions.
type confirmationDetail struct {
	trading.Confirmation
	Executions []ledger.Trade `json:"executions"`
}

// confirmationDetail adds the executions of the owner's order to conf;
// none while the ledger is not configured on this server.
func (s *Server) confirmationDetail(ctx context.Context, owner string, conf trading.Confirmation) (confirmationDetail, error) {
	d := confirmationDetail{Confirmation: conf, Executions: []ledger.Trade{}}
	if s.ledger == nil {
		return d, nil
	}
	execs, err := s.ledger.OrderExecutions(ctx, owner, conf.ID)
	if err != nil {
		return d, err
	}
	if execs != nil {
		d.Executions = execs
	}
	return d, nil
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
