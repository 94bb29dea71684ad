package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// marketRoutes serves the exchange's clock: the trading day, the auction
// cut-offs and IBKR's restart windows, as the confirm dialog counts down to
// them.
func (s *Server) marketRoutes() {
	s.e.GET(apiPrefix+"/market/clock", s.marketClock)
}

func (s *Server) marketClock(c echo.Context) error {
	return c.JSON(http.StatusOK, s.market.View())
}
