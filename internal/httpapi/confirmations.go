package httpapi

import (
	"context"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/ledger"
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
func (s *Server) getConfirmation(c echo.Context) (confirmationDetail, error) {
	conf, err := ownConfirmation(s.trading.Confirmation(c.Request().Context(), principal(c).UserID, c.Param("id")))
	if err != nil {
		return confirmationDetail{}, err
	}
	return s.confirmationDetail(c.Request().Context(), principal(c).UserID, conf)
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
		return confirmationDetail{}, err
	}
	if execs != nil {
		d.Executions = execs
	}
	return d, nil
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
