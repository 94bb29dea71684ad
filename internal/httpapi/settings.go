package httpapi

import (
	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/trading"
)

func (s *Server) getSettings(c echo.Context) (trading.Settings, error) {
	return s.trading.Settings(c.Request().Context(), principal(c).UserID)
}

func (s *Server) putPositionSize(c echo.Context, in trading.PositionSize) (trading.Settings, error) {
	// Lowering the size or turning it off never needs a step-up; raising
	// it does, which the service decides against the stored size.
	set := s.trading.SetPositionSizeNoRaise
	if s.auth.SteppedUp(principal(c)) {
		set = s.trading.SetPositionSize
	}
	return set(c.Request().Context(), principal(c).UserID, in)
}
