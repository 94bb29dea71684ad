package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func newTestServer(t *testing.T) (*Server, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	s := New(Deps{Log: zerolog.New(&logs), Pool: pgtest.Pool(t)})
	return s, &logs
}

func decodeProblem(t *testing.T, rec *httptest.ResponseRecorder) Problem {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, rec.Body)
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("decode problem: %v; body %s", err, rec.Body)
	}
	if p.RequestID == "" || p.RequestID != rec.Header().Get("X-Request-Id") {
		t.Fatalf("problem request_id %q, header %q", p.RequestID, rec.Header().Get("X-Request-Id"))
	}
	return p
}

func TestHealthAndReady(t *testing.T) {
	s, _ := newTestServer(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s = %d %s", path, rec.Code, rec.Body)
		}
	}
}

func TestReadyzRefusesOutdatedSchema(t *testing.T) {
	s, _ := newTestServer(t)
	if _, err := pgtest.OwnerPool(t, s.pool).Exec(t.Context(), "UPDATE schema_migrations SET dirty = true"); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("GET /readyz on a dirty schema = %d, want 503", rec.Code)
	}
	if p := decodeProblem(t, rec); p.Code != "unavailable" {
		t.Errorf("code = %q", p.Code)
	}
}

// During a rolling upgrade the previous release's replicas stay ready on
// the migrated schema when its migrations serve them, read through the
// server's own (application) role, and leave the load balancer when not.
func TestReadyzDuringARollingUpgrade(t *testing.T) {
	s, _ := newTestServer(t)
	owner := pgtest.OwnerPool(t, s.pool)
	ready := func(what string, want int) {
		t.Helper()
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if rec.Code != want {
			t.Errorf("GET /readyz, %s = %d %s, want %d", what, rec.Code, rec.Body, want)
		}
	}
	if _, err := owner.Exec(t.Context(), "UPDATE schema_migrations SET version = version + 1"); err != nil {
		t.Fatal(err)
	}
	ready("the next release migrated additively", http.StatusOK)
	if _, err := owner.Exec(t.Context(), "UPDATE schema_compat SET oldest_binary = (SELECT version FROM schema_migrations)"); err != nil {
		t.Fatal(err)
	}
	ready("the next release's migration needs its binary", http.StatusServiceUnavailable)
}

func TestUnknownRouteIsProblem(t *testing.T) {
	s, _ := newTestServer(t)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/nope", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("status = %d", rec.Code)
	}
	if p := decodeProblem(t, rec); p.Code != "not_found" || p.Status != 404 {
		t.Errorf("problem = %+v", p)
	}
}

// TestUnknownPage: a browser navigating to an unknown page gets the UI
// (which says "Page not found") with status 404; API calls and programs
// keep problem+json.
func TestUnknownPage(t *testing.T) {
	s, _ := newTestServer(t)
	html := "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	for _, tc := range []struct {
		path, accept, wantType string
	}{
		{"/no/such/page", html, "text/html; charset=utf-8"},
		{"/settings/nope", html, "text/html; charset=utf-8"},
		{"/no/such/page", "application/json", "application/problem+json"},
		{"/no/such/page", "", "application/problem+json"},
		{"/api/v1/nope", html, "application/problem+json"},
		{"/assets/nope.js", html, "application/problem+json"},
	} {
		rec := get(t, s.Handler(), tc.path, map[string]string{"Accept": tc.accept})
		if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != tc.wantType {
			t.Errorf("GET %s (Accept %q): %d %s, want 404 %s", tc.path, tc.accept, rec.Code, rec.Header().Get("Content-Type"), tc.wantType)
		}
		if tc.wantType != "application/problem+json" && (!strings.Contains(rec.Body.String(), "<script type=\"module\"") || rec.Header().Get("Content-Security-Policy") == "") {
			t.Errorf("GET %s: the page is not the UI with its CSP:\n%s", tc.path, rec.Body.String())
		}
	}
}

func TestPanicIsProblemWithoutStack(t *testing.T) {
	s, logs := newTestServer(t)
	s.e.GET("/boom", func(c echo.Context) error { panic("secret internal state 0xdeadbeef") })
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/boom", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d", rec.Code)
	}
	p := decodeProblem(t, rec)
	if p.Code != "internal" {
		t.Errorf("code = %q", p.Code)
	}
	body := rec.Body.String()
	for _, leak := range []string{"0xdeadbeef", "goroutine", ".go:"} {
		if strings.Contains(body, leak) {
			t.Errorf("response leaks %q: %s", leak, body)
		}
	}
	if !strings.Contains(logs.String(), "0xdeadbeef") || !strings.Contains(logs.String(), p.RequestID) {
		t.Errorf("the panic and its request id must be logged: %s", logs)
	}
}

func TestAccessLogOmitsCredentials(t *testing.T) {
	s, logs := newTestServer(t)
	req := httptest.NewRequest(http.MethodGet, "/healthz?token=querysecret123", nil)
	req.Header.Set("Authorization", "Bearer bearersecret123")
	req.Header.Set("Cookie", "session=cookiesecret123")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	out := logs.String()
	if !strings.Contains(out, `"path":"/healthz"`) || !strings.Contains(out, `"status":200`) {
		t.Fatalf("access log line missing: %s", out)
	}
	for _, secret := range []string{"bearersecret123", "cookiesecret123", "querysecret123"} {
		if strings.Contains(out, secret) {
			t.Errorf("access log leaks %q: %s", secret, out)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	s, _ := newTestServer(t)
	s.e.POST("/echo", func(c echo.Context) error {
		var v map[string]any
		if err := decodeJSON(c, &v); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})
	tests := []struct {
		name string
		body string
		want int
		code string
	}{
		{"ok", `{"a":1}`, 204, ""},
		{"too large", `{"a":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, 413, "invalid_argument"},
		{"not json", `{"a":`, 400, "invalid_argument"},
		{"empty", ``, 400, "invalid_argument"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/echo", strings.NewReader(tt.body))
		req.Header.Set("Content-Type", "application/json")
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("%s: status = %d, want %d (%s)", tt.name, rec.Code, tt.want, rec.Body)
			continue
		}
		if tt.code != "" {
			if p := decodeProblem(t, rec); string(p.Code) != tt.code {
				t.Errorf("%s: code = %q", tt.name, p.Code)
			}
		}
	}
}

func TestMetricsEndpoint(t *testing.T) {
	s, _ := newTestServer(t)
	for _, path := range []string{"/healthz", "/nope"} {
		s.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", rec.Code)
	}
	for _, want := range []string{
		`ordertune_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 1`,
		`status="404"`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestRoutesOfMissingParts: a server built without a broker service (no
// master key), notifications or the ledger answers each of their routes
// 503, saying what it lacks; one without accounts does so on the routes
// that need no sign-in.
func TestRoutesOfMissingParts(t *testing.T) {
	env := newAuthEnv(t)
	c := env.signIn(env.newAccount(auth.Subscriber, true))
	bare := New(Deps{Log: zerolog.Nop()}).Handler()
	tests := []struct {
		method, path string
		c            *client
		bare         bool // sent to the server without accounts
		detail       string
	}{
		{method: http.MethodGet, path: "/api/v1/broker", c: c, detail: "ORDERTUNE_MASTER_KEYS"},
		{method: http.MethodGet, path: "/api/v1/admin/users/x/reply-questions", c: env.signIn(env.newAccount(auth.Admin, true)),
			detail: "ORDERTUNE_MASTER_KEYS"},
		{method: http.MethodGet, path: "/api/v1/notifications", c: c, detail: "notifications are not configured"},
		{method: http.MethodGet, path: "/api/v1/webhooks", c: c, detail: "notifications are not configured"},
		{method: http.MethodGet, path: "/api/v1/positions", c: c, detail: "the ledger is not configured"},
		{method: http.MethodGet, path: "/api/v1/auth/signup", bare: true, detail: "accounts are not configured"},
		{method: http.MethodPost, path: "/api/v1/auth/password-reset", bare: true, detail: "accounts are not configured"},
	}
	for _, tt := range tests {
		var status int
		var body []byte
		if tt.bare {
			rec := httptest.NewRecorder()
			bare.ServeHTTP(rec, newRequest(t, tt.method, tt.path, map[string]string{"email": "a@example.com"}))
			status, body = rec.Code, rec.Body.Bytes()
		} else {
			r := tt.c.do(tt.method, tt.path, nil)
			status, body = r.status, r.body
		}
		if status != http.StatusServiceUnavailable || !strings.Contains(string(body), tt.detail) {
			t.Errorf("%s %s: %d %s, want 503 naming %q", tt.method, tt.path, status, body, tt.detail)
		}
	}
}
