package httpapi

import (
	"github.com/labstack/echo/v4"
)

// signupAccepted is sign-up's one answer, for new and registered
// addresses alike.
const signupAccepted = "If this e-mail address can be used, its account is ready: sign in with it. " +
	"If it already had an account, its owner has been told."

// rememberDevice gives the browser that just signed userID in fully a
// long-lived remembered-device cookie (or renews the one it has): its
// next sign-in passes the account's lock-out, which anyone knowing the
// e-mail can trigger. Like the session cookie it is random, stored only
// hashed, HttpOnly, Secure (on https) and SameSite=Strict. The sign-in
// has succeeded by then, so a failure here is logged, not answered.
func (s *Server) rememberDevice(c echo.Context, userID string) {
	tok, err := s.auth.RememberDevice(c.Request().Context(), userID, s.cookie(c, deviceCookieBase))
	if err != nil {
		s.log.Error().Str("request_id", requestID(c)).Err(err).Msg("remember device")
		return
	}
	s.setCookie(c, deviceCookieBase, tok, int(s.auth.DeviceMaxAge().Seconds()))
}
