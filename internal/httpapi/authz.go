package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/config"
	"github.com/ordertune/ordertune/internal/errs"
)

// policy is one row of the authorization table: who may call a route.
type policy struct {
	public  bool        // anyone, signed in or not
	roles   []auth.Role // session roles allowed; none: sessions refused
	scopes  []string    // API token scopes accepted (any one suffices); none: tokens refused
	partial bool        // a password-only session suffices: the 2FA step and enrolment only
	tenant  bool        // ids in the path belong to the caller: anyone else's answer 404
	// stepUp: a sensitive action; only a session that stepped up in the
	// last auth.StepUpWindow passes (403 step_up_required), never a token.
	stepUp bool
	// stepUpWhen: sensitive only for some requests (switching to live,
	// raising a value); the handler decides and calls requireStepUp.
	// Tokens are refused as for stepUp.
	stepUpWhen bool
}

// The shapes of rows the table uses most.
func public() policy                     { return policy{public: true} }
func signedIn() policy                   { return policy{roles: []auth.Role{auth.Admin, auth.Subscriber}} }
func ownData() policy                    { p := signedIn(); p.tenant = true; return p }
func adminOnly() policy                  { return policy{roles: []auth.Role{auth.Admin}} }
func secondStep() policy                 { p := signedIn(); p.partial = true; return p }
func (p policy) orScope(s string) policy { p.scopes = append(slices.Clone(p.scopes), s); return p }

// sensitive marks a row's route as a sensitive action: it needs a fresh
// step-up (POST /auth/step-up) and is refused to API tokens.
func (p policy) sensitive() policy { p.stepUp = true; return p }

// sensitiveWhen marks a route whose handler decides per request whether
// it is sensitive and then calls requireStepUp; API tokens are refused.
func (p policy) sensitiveWhen() policy { p.stepUpWhen = true; return p }

// routeKey names a route as echo registers it: "POST /api/v1/auth/login".
func routeKey(method, path string) string { return method + " " + path }

// apiPrefix starts every API route; under it a route with no row in the
// table is refused rather than left open.
const apiPrefix = "/api/v1"

// api registers an API route below apiPrefix. The authorization table, not
// the registration, decides who may call it; a route missing from the
// table fails TestEveryRouteHasAPolicy and is refused at run time.
func (s *Server) api(method, path string, h echo.HandlerFunc) {
	s.e.Add(method, apiPrefix+path, h)
}

// apiOf returns what registers the API routes of a part the server may be
// built without (a nil service in Deps). While present is false, each of
// its routes answers 503 unavailable with missing, once the authorization
// table has let the request through: the client learns what this server
// lacks rather than meeting a 404, and handlers never see a nil service.
func (s *Server) apiOf(present bool, missing string) func(method, path string, h echo.HandlerFunc) {
	return func(method, path string, h echo.HandlerFunc) {
		if !present {
			h = func(echo.Context) error { return errs.E(errs.Unavailable, "%s", missing) }
		}
		s.api(method, path, h)
	}
}

// noAccounts is the answer of every route that needs accounts on a server
// built without them.
const noAccounts = "accounts are not configured on this server"

const ctxPrincipal = "principal"

// principal returns who the request acts for. On any route that is not
// public the authorize middleware has set it; elsewhere it is the zero
// Principal.
func principal(c echo.Context) auth.Principal {
	p, _ := c.Get(ctxPrincipal).(auth.Principal)
	return p
}

// csrf refuses state-changing cross-origin browser requests, using the
// browser's own fetch metadata (Sec-Fetch-Site, else Origin against Host).
// A program sending a bearer token and no cookie cannot be a browser
// riding on someone's session, so it is exempt.
func (s *Server) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if _, ok := bearerToken(req); ok && req.Header.Get("Cookie") == "" {
			return next(c)
		}
		if err := s.cop.Check(req); err != nil {
			return errs.E(errs.Forbidden, "cross-origin request refused")
		}
		return next(c)
	}
}

func bearerToken(req *http.Request) (string, bool) {
	h := req.Header.Get(echo.HeaderAuthorization)
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// authorize applies the route's row of the authorization table. It runs
// after routing, so c.Path() is the registered path.
func (s *Server) authorize(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		pol, ok := s.policies[routeKey(c.Request().Method, c.Path())]
		if !ok {
			if !strings.HasPrefix(c.Path(), "/api/") || !s.registered(c.Request().Method, c.Path()) {
				return next(c) // no such route (404/405), or outside the API
			}
			s.reqLog(c).Error().Str("route", c.Path()).Msg("route has no row in the authorization table; refused")
			return errs.E(errs.Forbidden, "not allowed")
		}
		if pol.public {
			return next(c)
		}
		p, err := s.authenticate(c)
		if err != nil {
			return err
		}
		if err := pol.allows(p); err != nil {
			return err
		}
		if pol.stepUp || (pol.stepUpWhen && p.ViaToken()) {
			if err := s.auth.RequireStepUp(p); err != nil {
				return err
			}
		}
		c.Set(ctxPrincipal, p)
		logWith(c, func(l zerolog.Context) zerolog.Context { return l.Str("user_id", p.UserID) })
		return next(c)
	}
}

// allows returns nil when p may use a route with policy pol.
func (pol policy) allows(p auth.Principal) error {
	if p.ViaToken() {
		for _, sc := range pol.scopes {
			if p.HasScope(sc) {
				return nil
			}
		}
		return errs.E(errs.Forbidden, "this API token's scopes do not allow this request")
	}
	if !p.Full && !pol.partial {
		if !p.TOTPEnabled {
			return errs.E(errs.MFARequired, "set up two-factor authentication first")
		}
		return errs.E(errs.MFARequired, "enter your two-factor code first")
	}
	if !slices.Contains(pol.roles, p.Role) {
		return errs.E(errs.Forbidden, "your role does not allow this request")
	}
	return nil
}

// authenticate finds the principal from the bearer token or, failing
// that, the session cookie.
func (s *Server) authenticate(c echo.Context) (auth.Principal, error) {
	if s.auth == nil {
		return auth.Principal{}, errs.E(errs.Unavailable, noAccounts)
	}
	ctx := c.Request().Context()
	if tok, ok := bearerToken(c.Request()); ok {
		return s.auth.AuthenticateToken(ctx, tok)
	}
	id := s.sessionCookie(c)
	if id == "" {
		return auth.Principal{}, errs.E(errs.Unauthenticated, "sign in first")
	}
	return s.auth.Authenticate(ctx, id)
}

// registered reports whether method and path name a registered route.
func (s *Server) registered(method, path string) bool {
	for _, r := range s.e.Routes() {
		if r.Method == method && r.Path == path {
			return true
		}
	}
	return false
}

// authLayer is the server's part for accounts: the service, the cookie
// settings, the CSRF check and the authorization table.
type authLayer struct {
	auth          *auth.Service
	secureCookies bool
	cop           *http.CrossOriginProtection
	policies      map[string]policy
}

func newAuthLayer(d Deps) authLayer {
	l := authLayer{
		auth:          d.Auth,
		secureCookies: config.Config{PublicURL: d.PublicURL}.SecureCookies(),
		cop:           http.NewCrossOriginProtection(),
		policies:      routePolicies(),
	}
	if u, err := url.Parse(d.PublicURL); err == nil && u.Scheme != "" && u.Host != "" {
		// Behind a proxy the Host header may not be the public one; the
		// public origin is same-origin by definition.
		_ = l.cop.AddTrustedOrigin(u.Scheme + "://" + u.Host)
	}
	return l
}

// requireStepUp refuses the request unless its session stepped up
// recently; handlers of sensitiveWhen routes call it when the request at
// hand is the sensitive kind.
func (s *Server) requireStepUp(c echo.Context) error {
	return s.auth.RequireStepUp(principal(c))
}
