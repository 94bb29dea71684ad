package httpapi

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/auth"
)

// TestEveryRouteHasAPolicy walks the registered routes: each must have a
// row in the authorization table.
func TestEveryRouteHasAPolicy(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t)
	routes := env.srv.e.Routes()
	if len(routes) < 20 {
		t.Fatalf("only %d routes registered; the walk would prove little", len(routes))
	}
	for _, r := range routes {
		if r.Method == echo.RouteNotFound {
			continue
		}
		if _, ok := env.srv.policies[routeKey(r.Method, r.Path)]; !ok {
			t.Errorf("route %s %s has no row in routePolicies (authz_table.go)", r.Method, r.Path)
		}
	}
	env.browser().do(http.MethodGet, "/healthz", nil) // the log scan wants one request
}

// TestUnlistedAPIRouteIsRefused: an API route someone registers without a
// row is closed, not open.
func TestUnlistedAPIRouteIsRefused(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t)
	env.srv.e.GET(apiPrefix+"/forgotten", func(c echo.Context) error { return c.String(200, "open") })
	r := env.browser().do(http.MethodGet, "/api/v1/forgotten", nil)
	if r.status != 403 {
		t.Fatalf("unlisted API route: %d %s, want 403", r.status, r.body)
	}
	if r := env.browser().do(http.MethodGet, "/api/v1/no-such-route", nil); r.status != 404 {
		t.Errorf("unknown API route: %d, want 404", r.status)
	}
	if r := env.browser().do(http.MethodDelete, "/api/v1/me", nil); r.status != 405 {
		t.Errorf("wrong method on a route: %d, want 405", r.status)
	}
}

var pathParam = regexp.MustCompile(`:[a-zA-Z_]+`)

// TestRoutesRefuseWhatTheTableRefuses calls every route as each kind of
// caller its row excludes, and checks the refusal: no session → 401, a
// password-only session → 403 mfa_required, the wrong role → 403, an API
// token without the scope → 403; on tenant routes someone else's (here:
// unknown) ids → 404.
func TestRoutesRefuseWhatTheTableRefuses(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t, authEnvOptions{allFeatures: true})
	admin := env.newAccount(auth.Admin, true)
	sub := env.newAccount(auth.Subscriber, true)
	unenrolled := env.newAccount(auth.Subscriber, false)
	callers := map[string]*client{
		"nobody":        env.browser(),
		"password-only": env.passwordOnly(sub),
		"not enrolled":  env.passwordOnly(unenrolled),
		"admin":         env.signIn(admin),
		"subscriber":    env.signIn(sub),
	}
	// A token of a scope no route of this test server grants by default
	// is refused everywhere but on rows naming that scope.
	_, tok, err := env.svc.CreateToken(t.Context(), admin.user.ID, "walker", []string{auth.ScopeSignalsWrite}, "")
	if err != nil {
		t.Fatal(err)
	}
	callers["token"] = env.program(tok)

	const unknownID = "6f1c1b8e-3c3e-4c8e-9d7e-0a1b2c3d4e5f"
	foreign := foreignIDs(t, env, admin, env.newAccount(auth.Subscriber, true))
	checked := 0
	for _, r := range env.srv.e.Routes() {
		pol, ok := env.srv.policies[routeKey(r.Method, r.Path)]
		if !ok || r.Method == echo.RouteNotFound {
			continue // TestEveryRouteHasAPolicy reports it
		}
		id, ok := foreign[r.Path]
		if !ok {
			id = unknownID
		}
		path := pathParam.ReplaceAllString(r.Path, id)
		path = strings.ReplaceAll(path, "*", "x")
		if pol.public {
			if r.Method == http.MethodGet {
				if res := callers["nobody"].do(r.Method, path, nil); res.status == 401 || res.status == 403 {
					t.Errorf("public %s %s refused: %d", r.Method, r.Path, res.status)
				}
			}
			continue
		}
		checked++
		want := func(caller string, status int, code string) {
			t.Helper()
			res := callers[caller].do(r.Method, path, nil)
			if res.status != status {
				t.Errorf("%s %s as %s: %d %s, want %d", r.Method, r.Path, caller, res.status, res.body, status)
				return
			}
			if p := res.problem(t); string(p.Code) != code {
				t.Errorf("%s %s as %s: code %q, want %q", r.Method, r.Path, caller, p.Code, code)
			}
		}
		want("nobody", 401, "unauthenticated")
		if !pol.partial {
			want("password-only", 403, "mfa_required")
			want("not enrolled", 403, "mfa_required")
		}
		if !slices.Contains(pol.roles, auth.Admin) {
			want("admin", 403, "forbidden")
		}
		if !slices.Contains(pol.roles, auth.Subscriber) {
			want("subscriber", 403, "forbidden")
		}
		if !slices.Contains(pol.scopes, auth.ScopeSignalsWrite) {
			want("token", 403, "forbidden")
		}
		if pol.tenant && slices.Contains(pol.roles, auth.Subscriber) {
			res := callers["subscriber"].do(r.Method, path, nil)
			switch {
			case r.Method == http.MethodGet || r.Method == http.MethodDelete:
				if res.status != 404 {
					t.Errorf("%s %s with another tenant's id: %d, want 404", r.Method, r.Path, res.status)
				}
			case res.status < 400 || res.status == 403 || res.status >= 500:
				t.Errorf("%s %s with another tenant's id: %d, want 404 or a validation error", r.Method, r.Path, res.status)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d guarded routes checked", checked)
	}
}

// TestTokenScopes registers a route programs may call with signals:write
// and checks a token reaches it and nothing else.
func TestTokenScopes(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t)
	env.srv.api(http.MethodPost, "/scoped", func(c echo.Context) error {
		p := principal(c)
		return c.JSON(200, map[string]any{"user_id": p.UserID, "token": p.ViaToken()})
	})
	env.srv.policies[routeKey(http.MethodPost, apiPrefix+"/scoped")] = adminOnly().orScope(auth.ScopeSignalsWrite)

	admin := env.newAccount(auth.Admin, true)
	browser := env.signIn(admin).stepUp()
	r := browser.do(http.MethodPost, "/api/v1/admin/tokens", map[string]any{"name": "feed", "scopes": []string{"signals:write"}})
	var created tokenView
	r.json(t, &created)
	if r.status != 201 || !strings.HasPrefix(created.Token, "ot_") {
		t.Fatalf("create token: %d %s", r.status, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q on the token", cc)
	}
	if r := browser.do(http.MethodPost, "/api/v1/admin/tokens", map[string]any{"name": "bad", "scopes": []string{"everything"}}); r.status != 422 {
		t.Errorf("unknown scope: %d", r.status)
	}
	prog := env.program(created.Token)
	// Programs send no fetch metadata; a cross-site header on a bearer
	// request without cookies is not a browser riding on a session.
	prog.header.Set("Sec-Fetch-Site", "cross-site")
	r = prog.do(http.MethodPost, "/api/v1/scoped", "{}")
	var got map[string]any
	r.json(t, &got)
	if r.status != 200 || got["user_id"] != admin.user.ID || got["token"] != true {
		t.Fatalf("token on its scope's route: %d %s", r.status, r.body)
	}
	if r := prog.do(http.MethodGet, "/api/v1/admin/tokens", nil); r.status != 403 {
		t.Errorf("token on an admin route: %d", r.status)
	}

	r = browser.do(http.MethodGet, "/api/v1/admin/tokens", nil)
	if strings.Contains(string(r.body), created.Token) || !strings.Contains(string(r.body), created.ID) {
		t.Fatalf("token list shows the token or misses it: %s", r.body)
	}
	var list struct {
		Items []tokenView `json:"items"`
	}
	r.json(t, &list)
	if len(list.Items) != 1 || list.Items[0].LastUsedAt == nil {
		t.Errorf("last use not shown: %s", r.body)
	}

	if r := browser.do(http.MethodDelete, "/api/v1/admin/tokens/"+created.ID, nil); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := prog.do(http.MethodPost, "/api/v1/scoped", "{}"); r.status != 401 {
		t.Errorf("revoked token: %d", r.status)
	}
	if r := browser.do(http.MethodDelete, "/api/v1/admin/tokens/not-an-id", nil); r.status != 404 {
		t.Errorf("revoke a malformed id: %d", r.status)
	}
	if r := env.program("ot_forged").do(http.MethodPost, "/api/v1/scoped", "{}"); r.status != 401 {
		t.Errorf("forged token: %d", r.status)
	}
}

func TestCrossOriginRequestsAreRefused(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t, authEnvOptions{publicURL: "http://ordertune.example"})
	a := env.newAccount(auth.Subscriber, true)
	c := env.signIn(a).stepUp()
	tests := []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"cross-site fetch", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"same-site but other origin", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"foreign Origin, no fetch metadata", map[string]string{"Sec-Fetch-Site": "", "Origin": "https://evil.example"}, 403},
		{"same-origin fetch", map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
		{"the public origin behind a proxy", map[string]string{"Sec-Fetch-Site": "", "Origin": "http://ordertune.example"}, 200},
		{"no browser headers at all", map[string]string{"Sec-Fetch-Site": ""}, 200},
	}
	for _, tt := range tests {
		cc := *c
		cc.header = http.Header{}
		for k, v := range tt.header {
			if v != "" {
				cc.header.Set(k, v)
			}
		}
		r := cc.do(http.MethodPost, "/api/v1/me/recovery-codes", nil)
		if r.status != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.body, tt.want)
		}
	}
	// Reading is always allowed: GET changes nothing.
	cc := *c
	cc.header = http.Header{"Sec-Fetch-Site": {"cross-site"}}
	if r := cc.do(http.MethodGet, "/api/v1/me", nil); r.status != 200 {
		t.Errorf("cross-site GET: %d", r.status)
	}
}

func TestAdminUsersOverHTTP(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t)
	admin := env.signIn(env.newAccount(auth.Admin, true)).stepUp()
	sub := env.newAccount(auth.Subscriber, true)
	subClient := env.signIn(sub)

	pw := env.secret("created by an admin")
	r := admin.do(http.MethodPost, "/api/v1/admin/users", map[string]string{"email": "new@example.com", "role": "subscriber", "password": pw})
	var created userView
	r.json(t, &created)
	if r.status != 201 || created.Email != "new@example.com" || created.Role != auth.Subscriber {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r = admin.do(http.MethodPost, "/api/v1/admin/users", map[string]string{"email": "NEW@example.com", "role": "subscriber", "password": pw})
	if r.status != 409 {
		t.Errorf("duplicate email: %d", r.status)
	}
	r = admin.do(http.MethodGet, "/api/v1/admin/users?limit=2", nil)
	var page struct {
		Items      []userView `json:"items"`
		NextCursor *string    `json:"next_cursor"`
	}
	r.json(t, &page)
	if len(page.Items) != 2 || page.NextCursor == nil {
		t.Fatalf("first page: %s", r.body)
	}
	r = admin.do(http.MethodGet, "/api/v1/admin/users?limit=2&cursor="+*page.NextCursor, nil)
	r.json(t, &page)
	if len(page.Items) != 1 || page.NextCursor != nil {
		t.Fatalf("second page: %s", r.body)
	}
	if r := admin.do(http.MethodGet, "/api/v1/admin/users?limit=0", nil); r.status != 422 {
		t.Errorf("limit=0: %d", r.status)
	}

	r = admin.do(http.MethodPatch, "/api/v1/admin/users/"+sub.user.ID, map[string]bool{"disabled": true})
	var patched userView
	r.json(t, &patched)
	if r.status != 200 || !patched.Disabled {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	if r := subClient.do(http.MethodGet, "/api/v1/me", nil); r.status != 401 {
		t.Errorf("disabled user's session: %d, want 401", r.status)
	}
	for _, id := range []string{"6f1c1b8e-3c3e-4c8e-9d7e-0a1b2c3d4e5f", "nope"} {
		if r := admin.do(http.MethodPatch, "/api/v1/admin/users/"+id, map[string]bool{"disabled": true}); r.status != 404 {
			t.Errorf("PATCH unknown user %s: %d", id, r.status)
		}
	}
	if r := admin.do(http.MethodPatch, "/api/v1/admin/users/"+sub.user.ID, map[string]string{}); r.status != 422 {
		t.Errorf("PATCH without disabled: %d", r.status)
	}
}

// FuzzBearerToken: any Authorization header parses without panic, and a
// token is only taken from the Bearer scheme.
func FuzzBearerToken(f *testing.F) {
	f.Add("Bearer ot_abc")
	f.Add("bearer  ot_abc ")
	f.Add("Basic dXNlcjpwdw==")
	f.Add("Bearer")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", h)
		tok, ok := bearerToken(req)
		if ok && !strings.EqualFold(strings.SplitN(req.Header.Get("Authorization"), " ", 2)[0], "Bearer") {
			t.Fatalf("took %q from a non-Bearer header %q", tok, h)
		}
		if ok && tok != strings.TrimSpace(tok) {
			t.Fatalf("token %q keeps surrounding space", tok)
		}
	})
}
