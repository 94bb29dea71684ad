package httpapi

import (
	"github.com/labstack/echo/v4"
)

// hstsValue keeps browsers on https for a year once they have seen the
// site over https. It names no subdomains: those may be other services of
// the operator's.
const hstsValue = "max-age=31536000"

// responseHeaders gives every answer the headers an API response needs
// before any handler runs: nosniff, so a browser never runs a JSON, CSV or
// problem body as something else; no-store, so no cache along the way
// keeps a user's orders, log or settings; and HSTS when users reach the
// server over https. The web UI's handlers replace Cache-Control with
// their own (assets are cached for a year, index.html revalidated).
func (s *Server) responseHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set(echo.HeaderCacheControl, "no-store")
		if s.secureCookies {
			h.Set(echo.HeaderStrictTransportSecurity, hstsValue)
		}
		return next(c)
	}
}
