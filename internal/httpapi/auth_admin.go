package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/errs"
)

// adminAuthRoutes registers the admin's user and API token management.
func (s *Server) adminAuthRoutes() {
	api := s.apiOf(s.auth != nil, noAccounts)
	api(http.MethodGet, "/admin/users", reply(http.StatusOK, s.adminListUsers))
	api(http.MethodPost, "/admin/users", replyTo(http.StatusCreated, s.adminCreateUser))
	api(http.MethodPatch, "/admin/users/:id", s.adminPatchUser)
	api(http.MethodPost, "/admin/users/:id/totp/reset", reply(http.StatusOK, s.adminResetTOTP))
	api(http.MethodGet, "/admin/tokens", reply(http.StatusOK, s.adminListTokens))
	api(http.MethodPost, "/admin/tokens", replyTo(http.StatusCreated, s.adminCreateToken))
	api(http.MethodDelete, "/admin/tokens/:id", done(s.adminRevokeToken))
}

// listLimit reads the limit query parameter (default 50, at most 200).
func listLimit(c echo.Context) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 200 {
		return 0, errs.Fields("invalid limit", errs.FieldError{Field: "limit", Message: "must be a whole number from 1 to 200"})
	}
	return n, nil
}

func nextCursor(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (s *Server) adminListUsers(c echo.Context) (map[string]any, error) {
	limit, err := listLimit(c)
	if err != nil {
		return nil, err
	}
	users, next, err := s.auth.ListUsers(c.Request().Context(), limit, c.QueryParam("cursor"))
	if err != nil {
		return nil, err
	}
	items := make([]userView, len(users))
	for i, u := range users {
		items[i] = viewUser(u)
	}
	return map[string]any{"items": items, "next_cursor": nextCursor(next)}, nil
}

// newUser is POST /admin/users's body.
type newUser struct {
	Email    string    `json:"email"`
	Role     auth.Role `json:"role"`
	Password string    `json:"password"`
}

func (s *Server) adminCreateUser(c echo.Context, req newUser) (userView, error) {
	return viewedUser(s.auth.CreateUser(c.Request().Context(), principal(c).UserID,
		auth.NewUser{Email: req.Email, Role: req.Role, Password: req.Password}, c.RealIP()))
}

// adminPatchUser disables a user (ending their sessions) and/or suspends
// their entries with a reason (exits still go through).
func (s *Server) adminPatchUser(c echo.Context) error {
	var req struct {
		Disabled  *bool   `json:"disabled"`
		Suspended *bool   `json:"suspended"`
		Reason    *string `json:"reason"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Disabled == nil && req.Suspended == nil {
		return errs.Fields("nothing to change", errs.FieldError{Field: "disabled", Message: "send disabled or suspended"})
	}
	if req.Reason != nil && req.Suspended == nil {
		return errs.Fields("nothing to change", errs.FieldError{Field: "reason", Message: "goes with suspended"})
	}
	ctx, actor, id := c.Request().Context(), principal(c).UserID, c.Param("id")
	if req.Suspended != nil && s.risk == nil {
		return errs.E(errs.Unavailable, noRisk)
	}
	var u auth.User
	var err error
	if req.Disabled != nil {
		u, err = s.auth.SetDisabled(ctx, actor, id, *req.Disabled, c.RealIP())
	} else {
		u, err = s.auth.User(ctx, id)
	}
	if err != nil {
		return err
	}
	out := patchedUser{userView: viewUser(u)}
	if s.risk == nil {
		return c.JSON(http.StatusOK, out)
	}
	if req.Suspended != nil {
		reason := ""
		if req.Reason != nil {
			reason = *req.Reason
		}
		if err := s.risk.SetSuspended(ctx, actor, u.ID, *req.Suspended, reason, c.RealIP()); err != nil {
			return err
		}
	}
	st, err := s.risk.Settings(ctx, u.ID)
	if err != nil {
		return err
	}
	out.Suspended, out.SuspendedReason = st.Suspended, st.SuspendedReason
	return c.JSON(http.StatusOK, out)
}

// adminResetTOTP turns off a user's two-step sign-in (they lost their
// authenticator and recovery codes) and ends their sessions: their next
// sign-in enrols again.
func (s *Server) adminResetTOTP(c echo.Context) (userView, error) {
	return viewedUser(s.auth.ResetTOTP(c.Request().Context(), principal(c).UserID, c.Param("id"), c.RealIP()))
}

// tokenView is an API token's record; the token itself appears only in
// the answer to its creation.
type tokenView struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	Token      string     `json:"token,omitempty"`
}

func viewToken(t auth.Token) tokenView {
	return tokenView{ID: t.ID, Name: t.Name, Scopes: t.Scopes, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt,
		LastUsedAt: utcPtr(t.LastUsedAt), RevokedAt: utcPtr(t.RevokedAt)}
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func (s *Server) adminListTokens(c echo.Context) (map[string]any, error) {
	ts, err := s.auth.ListTokens(c.Request().Context())
	if err != nil {
		return nil, err
	}
	items := make([]tokenView, len(ts))
	for i, t := range ts {
		items[i] = viewToken(t)
	}
	return map[string]any{"items": items, "next_cursor": nil}, nil
}

// newToken is POST /admin/tokens's body.
type newToken struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

func (s *Server) adminCreateToken(c echo.Context, req newToken) (tokenView, error) {
	t, raw, err := s.auth.CreateToken(c.Request().Context(), principal(c).UserID, req.Name, req.Scopes, c.RealIP())
	if err != nil {
		return tokenView{}, err
	}
	v := viewToken(t)
	v.Token = raw
	noStore(c)
	return v, nil
}

func (s *Server) adminRevokeToken(c echo.Context) error {
	return s.auth.RevokeToken(c.Request().Context(), principal(c).UserID, c.Param("id"), c.RealIP())
}
