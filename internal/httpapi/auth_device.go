package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// signupAccepted is sign-up's one answer, for new and registered
// addresses alike.
const signupAccepted = "If this e-mail address can be used, its account is ready: sign in with it. " +
	"If it already had an account, its owner has been told."

// deviceCookieName is the remembered-device cookie's name, with the
// __Host- prefix whenever it is Secure, like the session cookie's.
func (s *Server) deviceCookieName() string {
	if s.secureCookies {
		return "__Host-ordertune_device"
	}
	return "ordertune_device"
}

// deviceCookie returns the remembered-device token the browser sent, or "".
func (s *Server) deviceCookie(c echo.Context) string {
	ck, err := c.Cookie(s.deviceCookieName())
	if err != nil {
		return ""
	}
	return ck.Value
}

// rememberDevice gives the browser that just signed userID in fully a
// long-lived remembered-device cookie (or renews the one it has): its
// next sign-in passes the account's lock-out, which anyone knowing the
// e-mail can trigger. Like the session cookie it is random, stored only
// hashed, HttpOnly, Secure (on https) and SameSite=Strict. The sign-in
// has succeeded by then, so a failure here is logged, not answered.
func (s *Server) rememberDevice(c echo.Context, userID string) {
	tok, err := s.auth.RememberDevice(c.Request().Context(), userID, s.deviceCookie(c))
	if err != nil {
		s.log.Error().Str("request_id", requestID(c)).Err(err).Msg("remember device")
		return
	}
	c.SetCookie(&http.Cookie{
		Name:     s.deviceCookieName(),
		Value:    tok,
		Path:     "/",
		MaxAge:   int(s.auth.DeviceMaxAge().Seconds()),
		HttpOnly: true,
		Secure:   s.secureCookies,
		SameSite: http.SameSiteStrictMode,
	})
}
