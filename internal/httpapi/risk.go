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
	api(http.MethodGet, "/settings/risk", s.getRiskSettings)
	api(http.MethodPut, "/settings/risk", s.putRiskSettings)
	api(http.MethodGet, "/admin/risk", s.getPlatformRisk)
	api(http.MethodPut, "/admin/risk", s.putPlatformRisk)
}

// noRisk is the answer of what needs risk limits on a server without them.
const noRisk = "risk limits are not configured on this server"

func (s *Server) getRiskSettings(c echo.Context) error {
	st, err := s.risk.Settings(c.Request().Context(), principal(c).UserID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *Server) putRiskSettings(c echo.Context) error {
	var in risk.UserUpdate
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	// Raising or removing a limit, or resuming after a pause, loosens the
	// guard a stolen session would want loose: it needs a step-up.
	// Lowering a limit or pausing never does.
	loosens, err := s.risk.Raises(c.Request().Context(), principal(c).UserID, in)
	if err != nil {
		return err
	}
	if loosens {
		if err := s.requireStepUp(c); err != nil {
			return err
		}
	}
	st, err := s.risk.SetSettings(c.Request().Context(), principal(c).UserID, in, c.RealIP())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *Server) getPlatformRisk(c echo.Context) error {
	p, err := s.risk.Platform(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Server) putPlatformRisk(c echo.Context) error {
	var in risk.PlatformUpdate
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	p, err := s.risk.SetPlatform(c.Request().Context(), principal(c).UserID, in, c.RealIP())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// patchedUser is PATCH /admin/users/{id}'s answer: the user and their
// suspension.
type patchedUser struct {
	userView
	Suspended       bool   `json:"suspended"`
	SuspendedReason string `json:"suspended_reason"`
}
