package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/risk"
)

// riskRoutes registers Settings → Risk and Admin → Risk; suspensions
// ride on PATCH /admin/users/{id} (adminPatchUser).
func (s *Server) riskRoutes() {
	api := s.apiOf(s.risk != nil, noRisk) // no risk service: no database
	api(http.MethodGet, "/settings/risk", reply(http.StatusOK, s.getRiskSettings))
	api(http.MethodPut, "/settings/risk", replyTo(http.StatusOK, s.putRiskSettings))
	api(http.MethodGet, "/admin/risk", reply(http.StatusOK, s.getPlatformRisk))
	api(http.MethodPut, "/admin/risk", replyTo(http.StatusOK, s.putPlatformRisk))
}

// noRisk is the answer of what needs risk limits on a server without them.
const noRisk = "risk limits are not configured on this server"

func (s *Server) getRiskSettings(c echo.Context) (risk.UserSettings, error) {
	return s.risk.Settings(c.Request().Context(), principal(c).UserID)
}

func (s *Server) putRiskSettings(c echo.Context, in risk.UserUpdate) (risk.UserSettings, error) {
	// Raising or removing a limit, or resuming after a pause, loosens the
	// guard a stolen session would want loose: it needs a step-up.
	// Lowering a limit or pausing never does.
	ctx, user := c.Request().Context(), principal(c).UserID
	loosens, err := s.risk.Raises(ctx, user, in)
	if err != nil {
		return risk.UserSettings{}, err
	}
	if loosens {
		if err := s.requireStepUp(c); err != nil {
			return risk.UserSettings{}, err
		}
	}
	return s.risk.SetSettings(ctx, user, in, c.RealIP())
}

func (s *Server) getPlatformRisk(c echo.Context) (risk.Platform, error) {
	return s.risk.Platform(c.Request().Context())
}

func (s *Server) putPlatformRisk(c echo.Context, in risk.PlatformUpdate) (risk.Platform, error) {
	return s.risk.SetPlatform(c.Request().Context(), principal(c).UserID, in, c.RealIP())
}

// patchedUser is PATCH /admin/users/{id}'s answer: the user and their
// suspension.
type patchedUser struct {
	userView
	Suspended       bool   `json:"suspended"`
	SuspendedReason string `json:"suspended_reason"`
}
