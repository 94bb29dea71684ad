package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/clocktest"
	"github.com/ordertune/ordertune/internal/logging/logtest"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/seal"
	"github.com/ordertune/ordertune/internal/trading"
)

// authEnv is a real server over HTTP with an account service on a fresh
// database and a fake clock. Everything both log goes to one buffer, and
// every secret the test sees (passwords, codes, TOTP secrets, session
// ids, tokens) is remembered; when the test ends the log is scanned for
// all of them. Every auth test runs in one, so the whole suite's logs are
// checked.
type authEnv struct {
	t     testing.TB
	srv   *Server
	ts    *httptest.Server
	svc   *auth.Service
	clock *clocktest.Clock
	logs  *logtest.Sink
	// features are the other features' services, when allFeatures.
	features *features
}

// authEnvOptions adjust newAuthEnv.
type authEnvOptions struct {
	publicURL   string
	signupOpen  bool
	allFeatures bool // wire every feature's service (wireAllFeatures), not accounts alone
}

func newAuthEnv(t testing.TB, opts ...authEnvOptions) *authEnv {
	t.Helper()
	var o authEnvOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	env := &authEnv{t: t, clock: clocktest.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)), logs: &logtest.Sink{}}
	log := zerolog.New(env.logs).Level(zerolog.TraceLevel)
	pool := pgtest.Pool(t)
	env.startAuth(auth.Config{Pool: pool, Sealer: seal.RandomRing("test"), Log: log, SignupOpen: o.signupOpen})
	d := Deps{Log: log, Pool: pool, Auth: env.svc, PublicURL: o.publicURL}
	if o.allFeatures {
		env.features = wireAllFeatures(t, &d)
	}
	env.serve(d)
	return env
}

// startAuth sets env.svc to an account service of cfg on the env's clock.
func (env *authEnv) startAuth(cfg auth.Config) {
	env.t.Helper()
	cfg.Clock = env.clock.Now
	// Cheap hashing keeps the suite fast; the production cost is proven
	// in package auth.
	cfg.Argon2 = auth.Argon2Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}
	svc, err := auth.New(cfg)
	if err != nil {
		env.t.Fatal(err)
	}
	env.svc = svc
}

// serve starts the server of d over real HTTP for the test's lifetime and
// scans its log for secrets when the test ends. Without a trading service
// it wires one without broker access, as main does without a broker.
func (env *authEnv) serve(d Deps) {
	if d.Trading == nil && d.Pool != nil {
		ts, err := trading.New(trading.Config{Pool: d.Pool, Broker: trading.NoBroker{}, Log: d.Log})
		if err != nil {
			env.t.Fatal(err)
		}
		d.Trading = ts
	}
	env.srv = New(d)
	env.ts = httptest.NewServer(env.srv.Handler())
	env.t.Cleanup(env.ts.Close)
	env.t.Cleanup(env.scanLogs)
}

// secret remembers s as something no log line may hold, and returns it.
func (env *authEnv) secret(s string) string { return env.logs.Secret(s) }

func (env *authEnv) scanLogs() {
	if !strings.Contains(env.logs.String(), `"message":"request"`) {
		env.t.Errorf("no access log captured; the scan would prove nothing")
	}
	secrets := env.logs.Secrets()
	for _, i := range env.logs.Leaks() {
		env.t.Errorf("the log contains secret number %d of this test (%d characters)", i, len(secrets[i]))
	}
}

// code returns secret's TOTP code at the env's clock.
func (env *authEnv) code(secret string) string {
	env.t.Helper()
	c, err := auth.TOTPCode(secret, env.clock.Now())
	if err != nil {
		env.t.Fatal(err)
	}
	return env.secret(c)
}

// account is a user the test can sign in as.
type account struct {
	user     auth.User
	password string
	secret   string // TOTP; "" when not enrolled
}

// newAccount creates a user; with2FA enrols TOTP directly.
func (env *authEnv) newAccount(role auth.Role, with2FA bool) account {
	env.t.Helper()
	ctx := context.Background()
	a := account{password: env.secret("pw " + strings.Repeat("z", 4) + time.Now().Format("150405.000000000"))}
	email := strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "") + string(role) + "@example.com"
	var err error
	if with2FA {
		var en auth.Enrollment
		a.user, en, err = env.svc.CreateUserWithTOTP(ctx, auth.NewUser{Email: email, Role: role, Password: a.password}, "")
		a.secret = env.secret(en.Secret)
	} else {
		a.user, err = env.svc.CreateUser(ctx, "", auth.NewUser{Email: email, Role: role, Password: a.password}, "")
	}
	if err != nil {
		env.t.Fatal(err)
	}
	return a
}

// client is a browser or a program talking to the env's server. It keeps
// the session cookie itself, so tests see exactly what was set.
type client struct {
	env     *authEnv
	session string // the session cookie's value
	bearer  string
	header  http.Header // extra headers on every request
	acct    *account    // who signed in through signIn or passwordOnly
}

// browser returns a client that sends same-origin fetch metadata, as the
// UI's fetch calls do.
func (env *authEnv) browser() *client {
	return &client{env: env, header: http.Header{"Sec-Fetch-Site": {"same-origin"}}}
}

// program returns a client that authenticates with an API token.
func (env *authEnv) program(token string) *client {
	return &client{env: env, bearer: env.secret(token), header: http.Header{}}
}

// response is a finished exchange.
type response struct {
	status int
	header http.Header
	body   []byte
	cookie *http.Cookie // the session cookie set, if any
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) problem(t *testing.T) Problem {
	t.Helper()
	var p Problem
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want problem+json; status %d body %s", ct, r.status, r.body)
	}
	r.json(t, &p)
	return p
}

// newRequest returns a request for url; body, when not nil, is sent as
// JSON (a string as is: it may be malformed on purpose).
func newRequest(t testing.TB, method, url string, body any) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, ok := body.(string)
		if !ok {
			j, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			b = string(j)
		}
		rd = strings.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// do sends a request; body, when not nil, is sent as JSON (a string as is).
func (c *client) do(method, path string, body any) response {
	c.env.t.Helper()
	req := newRequest(c.env.t, method, c.env.ts.URL+path, body)
	for k, v := range c.header {
		req.Header[k] = v
	}
	if c.session != "" {
		req.AddCookie(&http.Cookie{Name: c.env.srv.sessionCookieName(), Value: c.session})
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	res, err := c.env.ts.Client().Do(req)
	if err != nil {
		c.env.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.env.t.Fatal(err)
	}
	r := response{status: res.StatusCode, header: res.Header, body: b}
	for _, ck := range res.Cookies() {
		if ck.Name == c.env.srv.sessionCookieName() {
			r.cookie = ck
			c.session = c.env.secret(ck.Value)
			if ck.MaxAge < 0 {
				c.session = ""
			}
		}
	}
	c.env.rememberSecrets(b)
	return r
}

// rememberSecrets notes the secrets a response body hands out.
func (env *authEnv) rememberSecrets(body []byte) {
	var v struct {
		Secret        string   `json:"secret"`
		Token         string   `json:"token"`
		RecoveryCodes []string `json:"recovery_codes"`
	}
	if json.Unmarshal(body, &v) != nil {
		return
	}
	env.secret(v.Secret)
	env.secret(v.Token)
	for _, c := range v.RecoveryCodes {
		env.secret(c)
	}
}

// signIn does both steps over HTTP and returns a fully signed-in browser.
func (env *authEnv) signIn(a account) *client {
	env.t.Helper()
	c := env.passwordOnly(a)
	if r := c.do(http.MethodPost, "/api/v1/auth/totp", map[string]string{"code": env.code(a.secret)}); r.status != http.StatusOK {
		env.t.Fatalf("2FA step: %d %s", r.status, r.body)
	}
	return c
}

// passwordOnly signs in with the password only.
func (env *authEnv) passwordOnly(a account) *client {
	env.t.Helper()
	c := env.browser()
	c.acct = &a
	if r := c.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": a.user.Email, "password": a.password}); r.status != http.StatusOK {
		env.t.Fatalf("login: %d %s", r.status, r.body)
	}
	return c
}

// stepUp moves the clock to the next TOTP step (the replay guard refuses
// the code that signed in) and steps the session up with that step's code,
// as the UI's dialog does before a sensitive action. It returns c.
func (c *client) stepUp() *client {
	c.env.t.Helper()
	if c.acct == nil {
		c.env.t.Fatal("stepUp: the client was not signed in with signIn")
	}
	c.env.clock.Advance(30 * time.Second)
	if r := c.do(http.MethodPost, "/api/v1/auth/step-up", map[string]string{"code": c.env.code(c.acct.secret)}); r.status != http.StatusOK {
		c.env.t.Fatalf("step-up: %d %s", r.status, r.body)
	}
	return c
}
