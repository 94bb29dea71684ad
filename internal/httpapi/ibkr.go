package httpapi

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/passthrough"
)

// ibkrPrefix is where the IBKR pass-through lives: /api/v1/ibkr/<IBKR path
// below /v1/api>, e.g. /api/v1/ibkr/iserver/marketdata/snapshot?conids=265598.
const ibkrPrefix = "/ibkr"

// ibkrRoutes registers the IBKR pass-through: allowlisted read-only routes
// signed with the caller's own IBKR session, and the streaming WebSocket.
// Without a broker service (no master key) both answer 503. routes is the
// operator's allowlist; nil means passthrough.DefaultRoutes.
func (s *Server) ibkrRoutes(routes *passthrough.Allowlist) {
	var proxy *passthrough.Proxy
	if s.broker != nil {
		p, err := passthrough.New(passthrough.Config{Sessions: s.broker.Cache(), Routes: routes, Log: s.log})
		if err != nil {
			s.log.Error().Err(err).Msg("IBKR pass-through not available")
		} else {
			proxy = p
		}
	}
	available := func(c echo.Context) (*passthrough.Proxy, string, error) {
		if proxy == nil {
			return nil, "", errs.E(errs.Unavailable, "IBKR access is not configured on this server")
		}
		return proxy, principal(c).UserID, nil
	}
	s.api(http.MethodGet, ibkrPrefix+"/ws", func(c echo.Context) error {
		p, user, err := available(c)
		if err != nil {
			return err
		}
		return p.ServeWebSocket(c.Response(), c.Request(), user)
	})
	s.api(http.MethodGet, ibkrPrefix+"/*", func(c echo.Context) error {
		p, user, err := available(c)
		if err != nil {
			return err
		}
		// The escaped path, so that an encoded slash stays one segment
		// and is refused by the allowlist rather than reinterpreted.
		req := c.Request()
		rest := strings.TrimPrefix(req.URL.EscapedPath(), apiPrefix+ibkrPrefix+"/")
		err = p.Forward(c.Response(), req, user, rest)
		// The access log records the path: keep account ids out of it.
		req.URL.Path, req.URL.RawPath = passthrough.RedactPath(req.URL.Path), ""
		return err
	})
}
