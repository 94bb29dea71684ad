package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/auth"
)

// authRoutes registers authentication, 2FA and the account's own settings.
func (s *Server) authRoutes() {
	api := s.apiOf(s.auth != nil, noAccounts)
	api(http.MethodGet, "/auth/signup", s.signupOpen)
	api(http.MethodPost, "/auth/signup", replyTo(http.StatusAccepted, s.signup))
	api(http.MethodPost, "/auth/login", replyTo(http.StatusOK, s.login))
	api(http.MethodPost, "/auth/totp", replyTo(http.StatusOK, s.completeLogin))
	api(http.MethodPost, "/auth/logout", done(s.logout))
	api(http.MethodPost, "/auth/step-up", replyTo(http.StatusOK, s.stepUp))
	api(http.MethodGet, "/me", reply(http.StatusOK, s.me))
	api(http.MethodPost, "/me/totp/setup", reply(http.StatusOK, s.totpSetup))
	api(http.MethodPost, "/me/totp/enable", replyTo(http.StatusOK, s.totpEnable))
	api(http.MethodPost, "/me/password", done(s.changePassword))
	api(http.MethodPost, "/me/recovery-codes", reply(http.StatusOK, s.regenerateRecoveryCodes))
}

// userView is a user as the API shows it.
type userView struct {
	ID          string    `json:"id"`
	Email       string    `json:"email"`
	Role        auth.Role `json:"role"`
	TOTPEnabled bool      `json:"totp_enabled"`
	Disabled    bool      `json:"disabled"`
	Locked      bool      `json:"locked"`
	CreatedAt   time.Time `json:"created_at"`
}

func viewUser(u auth.User) userView {
	return userView{ID: u.ID, Email: u.Email, Role: u.Role, TOTPEnabled: u.TOTPEnabled,
		Disabled: u.Disabled, Locked: u.Locked, CreatedAt: u.CreatedAt.UTC()}
}

// viewedUser is viewUser for what a service method returns.
func viewedUser(u auth.User, err error) (userView, error) {
	if err != nil {
		return userView{}, err
	}
	return viewUser(u), nil
}

// The cookies' names, without the prefix cookieName adds.
const (
	sessionCookieBase = "ordertune_session"
	deviceCookieBase  = "ordertune_device" // the remembered device (auth_device.go)
)

// cookieName is the name of the cookie base: with the __Host- prefix
// whenever it is Secure, so no subdomain or plain-http page can set or
// shadow it.
func (s *Server) cookieName(base string) string {
	if s.secureCookies {
		return "__Host-" + base
	}
	return base
}

func (s *Server) sessionCookieName() string { return s.cookieName(sessionCookieBase) }

// cookie returns the value of the cookie base the browser sent, or "".
func (s *Server) cookie(c echo.Context, base string) string {
	ck, err := c.Cookie(s.cookieName(base))
	if err != nil {
		return ""
	}
	return ck.Value
}

func (s *Server) sessionCookie(c echo.Context) string { return s.cookie(c, sessionCookieBase) }

// setCookie sends the cookie base with value; maxAge is http.Cookie's
// (0: until the browser closes, negative: delete it now).
func (s *Server) setCookie(c echo.Context, base, value string, maxAge int) {
	c.SetCookie(&http.Cookie{
		Name:     s.cookieName(base),
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   s.secureCookies,
		// Strict: the UI is one origin and its fetches are same-site, so
		// a cookie never needs to ride on a request another site starts.
		SameSite: http.SameSiteStrictMode,
	})
}

// setSession sends the session id; an empty id clears the cookie.
func (s *Server) setSession(c echo.Context, id string) {
	maxAge := 0
	if id == "" {
		maxAge = -1
	}
	s.setCookie(c, sessionCookieBase, id, maxAge)
}

// noStore keeps a response holding a secret out of every cache.
func noStore(c echo.Context) {
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// signupOpen tells the sign-in page whether to offer a sign-up.
func (s *Server) signupOpen(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]bool{"open": s.auth.SignupOpen()})
}

func (s *Server) signup(c echo.Context, req credentials) (map[string]string, error) {
	if err := s.auth.Signup(c.Request().Context(), req.Email, req.Password, c.RealIP()); err != nil {
		return nil, err
	}
	// The same answer whether or not the address had an account: sign-up
	// must not tell who is registered.
	return map[string]string{"message": signupAccepted}, nil
}

func (s *Server) login(c echo.Context, req credentials) (map[string]any, error) {
	ctx := c.Request().Context()
	res, err := s.auth.LoginFrom(ctx, req.Email, req.Password, c.RealIP(), s.cookie(c, deviceCookieBase))
	if err != nil {
		return nil, err
	}
	// A session from before this sign-in ends: one browser, one session.
	if old := s.sessionCookie(c); old != "" {
		if err := s.auth.Logout(ctx, old, c.RealIP()); err != nil {
			return nil, err
		}
	}
	s.setSession(c, res.SessionID)
	noStore(c)
	return map[string]any{"mfa": res.MFA, "user": viewUser(res.User)}, nil
}

// secondFactor is the body of the requests that take a second factor: a
// TOTP code or a recovery code.
type secondFactor struct {
	Code         string `json:"code"`
	RecoveryCode string `json:"recovery_code"`
}

func (f secondFactor) auth() auth.SecondFactor {
	return auth.SecondFactor{Code: f.Code, RecoveryCode: f.RecoveryCode}
}

func (s *Server) completeLogin(c echo.Context, req secondFactor) (map[string]any, error) {
	id, u, err := s.auth.CompleteLogin(c.Request().Context(), s.sessionCookie(c), req.auth(), c.RealIP())
	if err != nil {
		return nil, err
	}
	s.setSession(c, id)
	s.rememberDevice(c, u.ID)
	noStore(c)
	return map[string]any{"user": viewUser(u)}, nil
}

func (s *Server) logout(c echo.Context) error {
	if err := s.auth.Logout(c.Request().Context(), s.sessionCookie(c), c.RealIP()); err != nil {
		return err
	}
	s.setSession(c, "")
	return nil
}

// meView is GET /me: the user and the session's step-up.
type meView struct {
	userView
	// StepUpUntil is when the session's step-up runs out; null when it
	// has none in force.
	StepUpUntil *time.Time `json:"step_up_until"`
}

func (s *Server) me(c echo.Context) (meView, error) {
	p := principal(c)
	u, err := s.auth.User(c.Request().Context(), p.UserID)
	if err != nil {
		return meView{}, err
	}
	v := meView{userView: viewUser(u)}
	if s.auth.SteppedUp(p) {
		v.StepUpUntil = &p.StepUpUntil
	}
	return v, nil
}

// stepUp takes a fresh second factor for sensitive actions.
func (s *Server) stepUp(c echo.Context, req secondFactor) (map[string]time.Time, error) {
	until, err := s.auth.StepUp(c.Request().Context(), s.sessionCookie(c), req.auth(), c.RealIP())
	if err != nil {
		return nil, err
	}
	return map[string]time.Time{"step_up_until": until.UTC()}, nil
}

func (s *Server) totpSetup(c echo.Context) (map[string]string, error) {
	en, err := s.auth.SetupTOTP(c.Request().Context(), principal(c).UserID)
	if err != nil {
		return nil, err
	}
	noStore(c)
	return map[string]string{"secret": en.Secret, "otpauth_uri": en.URI, "qr_png": en.QRPNGData}, nil
}

// totpCode is POST /me/totp/enable's body.
type totpCode struct {
	Code string `json:"code"`
}

func (s *Server) totpEnable(c echo.Context, req totpCode) (map[string]any, error) {
	id, codes, err := s.auth.EnableTOTP(c.Request().Context(), s.sessionCookie(c), req.Code, c.RealIP())
	if err != nil {
		return nil, err
	}
	s.setSession(c, id)
	s.rememberDevice(c, principal(c).UserID)
	noStore(c)
	return map[string]any{"recovery_codes": codes}, nil
}

func (s *Server) changePassword(c echo.Context) error {
	var req struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	return s.auth.ChangePassword(c.Request().Context(), principal(c).UserID, s.sessionCookie(c), req.Current, req.New, c.RealIP())
}

func (s *Server) regenerateRecoveryCodes(c echo.Context) (map[string]any, error) {
	codes, err := s.auth.RegenerateRecoveryCodes(c.Request().Context(), principal(c).UserID, c.RealIP())
	if err != nil {
		return nil, err
	}
	noStore(c)
	return map[string]any{"recovery_codes": codes}, nil
}
