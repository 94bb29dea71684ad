package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/auth"
)

func TestLoginNeedsTheSecondFactor(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t)
	a := env.newAccount(auth.Subscriber, true)
	c := env.browser()

	r := c.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": a.user.Email, "password": env.secret("not-the-password")})
	if p := r.problem(t); r.status != 401 || p.Code != "unauthenticated" || r.cookie != nil {
		t.Fatalf("wrong password: %d %+v, cookie %v", r.status, p, r.cookie)
	}

	r = c.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": a.user.Email, "password": a.password})
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	var login struct {
		MFA  string   `json:"mfa"`
		User userView `json:"user"`
	}
	r.json(t, &login)
	if login.MFA != "required" || login.User.ID != a.user.ID {
		t.Errorf("login answer %+v", login)
	}
	ck := r.cookie
	if ck == nil || ck.Name != "ordertune_session" || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Secure {
		t.Fatalf("session cookie %+v: want ordertune_session, HttpOnly, SameSite=Strict, Path=/, not Secure on http", ck)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q on login", cc)
	}
	passwordOnly := c.session

	// A password-only session reaches GET /me and the 2FA step, nothing else.
	if r := c.do(http.MethodGet, "/api/v1/me", nil); r.status != 200 {
		t.Errorf("GET /me with a password-only session: %d %s", r.status, r.body)
	}
	r = c.do(http.MethodPost, "/api/v1/me/password", map[string]string{"current_password": a.password, "new_password": "whatever-new"})
	if p := r.problem(t); r.status != 403 || p.Code != "mfa_required" {
		t.Errorf("password change with a password-only session: %d %+v", r.status, p)
	}

	r = c.do(http.MethodPost, "/api/v1/auth/totp", map[string]string{"code": env.secret("000000")})
	if p := r.problem(t); r.status != 401 || p.Code != "unauthenticated" {
		t.Errorf("wrong code: %d %+v", r.status, p)
	}
	r = c.do(http.MethodPost, "/api/v1/auth/totp", map[string]string{"code": env.code(a.secret)})
	if r.status != 200 {
		t.Fatalf("2FA step: %d %s", r.status, r.body)
	}
	if r.cookie == nil || r.cookie.Value == passwordOnly || c.session == "" {
		t.Fatal("the session id did not change after the second factor")
	}
	var me userView
	r = c.do(http.MethodGet, "/api/v1/me", nil)
	r.json(t, &me)
	want := userView{ID: a.user.ID, Email: a.user.Email, Role: auth.Subscriber, TOTPEnabled: true, CreatedAt: a.user.CreatedAt}
	if diff := cmp.Diff(want, me); diff != "" {
		t.Errorf("GET /me (-want +got):\n%s", diff)
	}

	old := env.browser()
	old.session = passwordOnly
	if r := old.do(http.MethodGet, "/api/v1/me", nil); r.status != 401 {
		t.Errorf("the pre-2FA session id still works: %d", r.status)
	}

	r = c.do(http.MethodPost, "/api/v1/auth/logout", nil)
	if r.status != 204 || r.cookie == nil || r.cookie.MaxAge >= 0 {
		t.Fatalf("logout: %d, cookie %+v", r.status, r.cookie)
	}
	if r := c.do(http.MethodGet, "/api/v1/me", nil); r.status != 401 {
		t.Errorf("GET /me after logout: %d", r.status)
	}
}

func TestEnrolmentOverHTTP(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t)
	a := env.newAccount(auth.Admin, false)
	c := env.browser()
	r := c.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": a.user.Email, "password": a.password})
	var login struct {
		MFA string `json:"mfa"`
	}
	r.json(t, &login)
	if login.MFA != "enroll" {
		t.Fatalf("mfa = %q, want enroll", login.MFA)
	}
	if r := c.do(http.MethodGet, "/api/v1/admin/users", nil); r.status != 403 || r.problem(t).Code != "mfa_required" {
		t.Errorf("admin route before enrolment: %d %s", r.status, r.body)
	}
	if r := c.do(http.MethodPost, "/api/v1/auth/totp", map[string]string{"code": "123456"}); r.status != 403 || r.problem(t).Code != "mfa_required" {
		t.Errorf("2FA step before enrolment: %d %s", r.status, r.body)
	}

	r = c.do(http.MethodPost, "/api/v1/me/totp/setup", nil)
	var setup struct {
		Secret     string `json:"secret"`
		OTPAuthURI string `json:"otpauth_uri"`
		QRPNG      string `json:"qr_png"`
	}
	r.json(t, &setup)
	if r.status != 200 || setup.Secret == "" || !strings.HasPrefix(setup.OTPAuthURI, "otpauth://totp/") || !strings.HasPrefix(setup.QRPNG, "data:image/png;base64,") {
		t.Fatalf("setup: %d %+v", r.status, setup)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q on a response with a secret", cc)
	}
	before := c.session
	r = c.do(http.MethodPost, "/api/v1/me/totp/enable", map[string]string{"code": env.code(setup.Secret)})
	var enabled struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.json(t, &enabled)
	if r.status != 200 || len(enabled.RecoveryCodes) != 10 {
		t.Fatalf("enable: %d %s", r.status, r.body)
	}
	if c.session == before {
		t.Error("the session id did not change at enrolment")
	}
	if r := c.do(http.MethodGet, "/api/v1/admin/users", nil); r.status != 200 {
		t.Errorf("admin route after enrolment: %d %s", r.status, r.body)
	}
	if r := c.do(http.MethodPost, "/api/v1/me/totp/setup", nil); r.status != 409 {
		t.Errorf("setup again once enrolled: %d", r.status)
	}

	// A recovery code signs in once.
	env.clock.Advance(time.Minute)
	b := env.passwordOnly(account{user: a.user, password: a.password})
	if r := b.do(http.MethodPost, "/api/v1/auth/totp", map[string]string{"recovery_code": enabled.RecoveryCodes[3]}); r.status != 200 {
		t.Fatalf("recovery code: %d %s", r.status, r.body)
	}
	b2 := env.passwordOnly(account{user: a.user, password: a.password})
	if r := b2.do(http.MethodPost, "/api/v1/auth/totp", map[string]string{"recovery_code": enabled.RecoveryCodes[3]}); r.status != 401 {
		t.Fatalf("a used recovery code: %d %s", r.status, r.body)
	}
	// Regenerating the codes is sensitive: a recovery code steps up too.
	if r := b.do(http.MethodPost, "/api/v1/me/recovery-codes", nil); r.status != 403 || r.problem(t).Code != "step_up_required" {
		t.Fatalf("regenerate without step-up: %d %s", r.status, r.body)
	}
	if r := b.do(http.MethodPost, "/api/v1/auth/step-up", map[string]string{"recovery_code": enabled.RecoveryCodes[4]}); r.status != 200 {
		t.Fatalf("step-up with a recovery code: %d %s", r.status, r.body)
	}
	r = b.do(http.MethodPost, "/api/v1/me/recovery-codes", nil)
	var fresh struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.json(t, &fresh)
	if r.status != 200 || len(fresh.RecoveryCodes) != 10 || fresh.RecoveryCodes[0] == enabled.RecoveryCodes[0] {
		t.Fatalf("regenerate: %d %s", r.status, r.body)
	}
}

func TestSecureCookieOverHTTPS(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t, authEnvOptions{publicURL: "https://ordertune.example"})
	a := env.newAccount(auth.Subscriber, true)
	c := env.browser()
	r := c.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": a.user.Email, "password": a.password})
	ck := r.cookie
	if r.status != 200 || ck == nil {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	if ck.Name != "__Host-ordertune_session" || !ck.Secure || !ck.HttpOnly || ck.Path != "/" || ck.Domain != "" || ck.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie %+v: want __Host-ordertune_session, Secure, HttpOnly, Path=/, no Domain, SameSite=Strict", ck)
	}
	if r := c.do(http.MethodGet, "/api/v1/me", nil); r.status != 200 {
		t.Errorf("GET /me with the __Host- cookie: %d", r.status)
	}
}

func TestSignupOverHTTP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		open   bool
		body   any
		status int
		code   string
	}{
		{"closed", false, map[string]string{"email": "a@example.com", "password": "password-1"}, 403, "forbidden"},
		{"open", true, map[string]string{"email": "a@example.com", "password": "password-1"}, 202, ""},
		{"short password", true, map[string]string{"email": "b@example.com", "password": "short"}, 422, "invalid_argument"},
		{"unknown field", true, map[string]string{"email": "c@example.com", "password": "password-1", "role": "admin"}, 422, "invalid_argument"},
	}
	for _, tt := range tests {
		env := newAuthEnv(t, authEnvOptions{signupOpen: tt.open})
		r := env.browser().do(http.MethodPost, "/api/v1/auth/signup", tt.body)
		if r.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.body, tt.status)
			continue
		}
		if tt.code != "" {
			if p := r.problem(t); string(p.Code) != tt.code {
				t.Errorf("%s: code %q, want %q", tt.name, p.Code, tt.code)
			}
			continue
		}
		var got map[string]string
		r.json(t, &got)
		if got["message"] != signupAccepted || len(got) != 1 {
			t.Errorf("%s: answered %s", tt.name, r.body)
		}
	}
}

// TestSignupSameAnswerForRegisteredEmail: sign-up with an address that
// has an account answers exactly as for a new one (status and body), so
// it cannot be used to find out who is registered; the address is
// throttled after five sign-ups an hour.
func TestSignupSameAnswerForRegisteredEmail(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t, authEnvOptions{signupOpen: true})
	existing := env.newAccount(auth.Subscriber, true)
	pw := env.secret("password-123")
	fresh := env.browser().do(http.MethodPost, "/api/v1/auth/signup", map[string]string{"email": "brand-new@example.com", "password": pw})
	taken := env.browser().do(http.MethodPost, "/api/v1/auth/signup", map[string]string{"email": strings.ToUpper(existing.user.Email), "password": pw})
	if fresh.status != taken.status || string(fresh.body) != string(taken.body) {
		t.Fatalf("new address: %d %s\nregistered address: %d %s\nwant the same answer", fresh.status, fresh.body, taken.status, taken.body)
	}
	if fresh.status != http.StatusAccepted {
		t.Errorf("status %d, want 202", fresh.status)
	}
	for i := range 3 {
		if r := env.browser().do(http.MethodPost, "/api/v1/auth/signup", map[string]string{"email": fmt.Sprintf("n%d@example.com", i), "password": pw}); r.status != 202 {
			t.Fatalf("sign-up %d: %d %s", i+3, r.status, r.body)
		}
	}
	r := env.browser().do(http.MethodPost, "/api/v1/auth/signup", map[string]string{"email": "sixth@example.com", "password": pw})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Errorf("sixth sign-up from one address: %d %s (Retry-After %q), want 429", r.status, r.body, r.header.Get("Retry-After"))
	}
}

func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t)
	a := env.newAccount(auth.Subscriber, true)
	one := env.signIn(a)
	env.clock.Advance(30 * time.Second)
	two := env.signIn(a)
	one.stepUp()
	newPw := env.secret("the new password")
	r := one.do(http.MethodPost, "/api/v1/me/password", map[string]string{"current_password": a.password, "new_password": newPw})
	if r.status != 204 {
		t.Fatalf("change: %d %s", r.status, r.body)
	}
	if r := one.do(http.MethodGet, "/api/v1/me", nil); r.status != 200 {
		t.Errorf("the changing session: %d", r.status)
	}
	if r := two.do(http.MethodGet, "/api/v1/me", nil); r.status != 401 {
		t.Errorf("the other session: %d, want 401", r.status)
	}
}

func TestSessionIdleTimeoutOverHTTP(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t)
	c := env.signIn(env.newAccount(auth.Subscriber, true))
	env.clock.Advance(29 * time.Minute)
	if r := c.do(http.MethodGet, "/api/v1/me", nil); r.status != 200 {
		t.Fatalf("after 29 idle minutes: %d", r.status)
	}
	env.clock.Advance(31 * time.Minute)
	if r := c.do(http.MethodGet, "/api/v1/me", nil); r.status != 401 {
		t.Fatalf("after 31 idle minutes: %d, want 401", r.status)
	}
}

func TestThrottleOverHTTP(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t)
	a := env.newAccount(auth.Subscriber, true)
	c := env.browser()
	for range 5 {
		if r := c.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": a.user.Email, "password": env.secret("guess-guess")}); r.status != 401 {
			t.Fatalf("wrong password: %d", r.status)
		}
	}
	r := c.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": a.user.Email, "password": a.password})
	if p := r.problem(t); r.status != 429 || p.Code != "rate_limited" || r.header.Get("Retry-After") != "30" {
		t.Fatalf("sixth attempt: %d %+v Retry-After %q; want 429 with Retry-After 30", r.status, p, r.header.Get("Retry-After"))
	}
	env.clock.Advance(30 * time.Second)
	if r := c.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": a.user.Email, "password": a.password}); r.status != 200 {
		t.Fatalf("after the back-off: %d %s", r.status, r.body)
	}
}

// TestConcurrentCodeSubmissions: 20 sessions send the same valid code at
// once; exactly one is signed in.
func TestConcurrentCodeSubmissions(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t)
	a := env.newAccount(auth.Subscriber, true)
	clients := make([]*client, 20)
	for i := range clients {
		clients[i] = env.passwordOnly(a)
	}
	code := env.code(a.secret)
	statuses := make(chan int, len(clients))
	start := make(chan struct{})
	done := make(chan struct{})
	for _, c := range clients {
		go func() {
			defer func() { done <- struct{}{} }()
			<-start
			statuses <- c.do(http.MethodPost, "/api/v1/auth/totp", map[string]string{"code": code}).status
		}()
	}
	close(start)
	for range clients {
		<-done
	}
	close(statuses)
	count := map[int]int{}
	for st := range statuses {
		count[st]++
	}
	if count[200] != 1 || count[200]+count[401]+count[429] != 20 {
		t.Fatalf("statuses %v: want exactly one 200, the rest 401 or 429", count)
	}
}

// TestAuditRowsOverHTTP: each account event is in the audit trail with
// the user, the client's address and the time it happened.
func TestAuditRowsOverHTTP(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t)
	a := env.newAccount(auth.Admin, true)
	c := env.browser()
	c.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": a.user.Email, "password": env.secret("wrong-password")})
	env.clock.Advance(time.Second)
	c = env.signIn(a)
	c.stepUp() // 30 s later
	env.clock.Advance(time.Second)
	var tok tokenView
	c.do(http.MethodPost, "/api/v1/admin/tokens", map[string]any{"name": "feed", "scopes": []string{"signals:write"}}).json(t, &tok)
	c.do(http.MethodDelete, "/api/v1/admin/tokens/"+tok.ID, nil)
	c.do(http.MethodPost, "/api/v1/me/password", map[string]string{"current_password": a.password, "new_password": env.secret("another-password")})

	type row struct {
		Action, UserID, IP string
		At                 time.Time
	}
	rows, err := env.srv.pool.Query(t.Context(), `SELECT action, coalesce(user_id::text, ''), coalesce(ip, ''), at
		FROM audit_events WHERE action NOT IN ('user.created', '2fa.enabled') ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i].At = got[i].At.UTC()
	}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	id, ip := a.user.ID, "127.0.0.1"
	want := []row{
		{"login.failure", id, ip, t0},
		{"login.password", id, ip, t0.Add(time.Second)},
		{"login.success", id, ip, t0.Add(time.Second)},
		{"step_up", id, ip, t0.Add(31 * time.Second)},
		{"token.created", id, ip, t0.Add(32 * time.Second)},
		{"token.revoked", id, ip, t0.Add(32 * time.Second)},
		{"password.changed", id, ip, t0.Add(32 * time.Second)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit rows (-want +got):\n%s", diff)
	}
}
