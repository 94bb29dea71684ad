package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// resetRequested is the one answer to a reset request, for registered and
// unknown addresses alike.
const resetRequested = "If an account uses this address, a link to choose a new password is on its way to it. " +
	"The link works once, for 30 minutes."

// resetRoutes registers "Forgot password?": asking for a reset link, and
// setting a new password with one.
func (s *Server) resetRoutes() {
	api := s.apiOf(s.auth != nil, noAccounts)
	api(http.MethodPost, "/auth/password-reset", replyTo(http.StatusAccepted, s.requestPasswordReset))
	api(http.MethodPost, "/auth/password-reset/complete", done(s.completePasswordReset))
}

// resetRequest is POST /auth/password-reset's body.
type resetRequest struct {
	Email string `json:"email"`
}

func (s *Server) requestPasswordReset(c echo.Context, req resetRequest) (map[string]string, error) {
	if err := s.auth.RequestPasswordReset(c.Request().Context(), req.Email, c.RealIP()); err != nil {
		return nil, err
	}
	return map[string]string{"message": resetRequested}, nil
}

func (s *Server) completePasswordReset(c echo.Context) error {
	var req struct {
		Token       string `json:"token"`
		NewPassword string `json:"new_password"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.auth.CompletePasswordReset(c.Request().Context(), req.Token, req.NewPassword, c.RealIP()); err != nil {
		return err
	}
	// Every session of the account ended, this browser's too.
	if s.sessionCookie(c) != "" {
		s.setSession(c, "")
	}
	return nil
}
