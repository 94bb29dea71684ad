package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/trading"
)

func (s *Server) getSettings(c echo.Context) error {
	st, err := s.trading.Settings(c.Request().Context(), principal(c).UserID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *Server) putPositionSize(c echo.Context) error {
	var in trading.PositionSize
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	// Lowering the size or turning it off never needs a step-up; raising
	// it does, which the service decides against the stored size.
	set := s.trading.SetPositionSizeNoRaise
	if s.auth.SteppedUp(principal(c)) {
		set = s.trading.SetPositionSize
	}
	st, err := set(c.Request().Context(), principal(c).UserID, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}
