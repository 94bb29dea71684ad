package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

func TestEndpoint(t *testing.T) {
	tests := map[string]string{
		"/v1/api/iserver/account/DU1234567/orders":                   "/iserver/account/{account}/orders",
		"/v1/api/iserver/account/U7654321/order/12345678":            "/iserver/account/{account}/order/{n}",
		"/v1/api/iserver/account/order/status/987654321":             "/iserver/account/order/status/{n}",
		"/v1/api/iserver/reply/8f0b3c2e-1d4a-4b5c-9e6f-0a1b2c3d4e5f": "/iserver/reply/{id}",
		"/v1/api/oauth/live_session_token":                           "/oauth/live_session_token",
		"/v1/api/portfolio/DU1234567/positions/0":                    "/portfolio/{account}/positions/{n}",
		"/v1/api": "/",
	}
	for in, want := range tests {
		if got := Endpoint(in); got != want {
			t.Errorf("Endpoint(%q) = %q, want %q", in, got, want)
		}
	}
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

func TestRecordedMetricsAreExported(t *testing.T) {
	m := New()
	m.ObserveHTTP("/api/v1/signals/:id", "GET", 404, 3*time.Millisecond)
	m.Confirmation("submitted")
	m.Handshake("ok")
	m.RegisterSessions(func() map[string]int { return map[string]int{"ready": 3} })
	m.RegisterOutbox(func() (int, time.Duration, error) { return 7, 1500 * time.Millisecond, nil })

	ibkr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(429) }))
	defer ibkr.Close()
	c := &http.Client{Transport: m.Transport(nil)}
	resp, err := c.Get(ibkr.URL + "/v1/api/iserver/account/DU1234567/orders")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	out := scrape(t, m)
	for _, want := range []string{
		`ordertune_http_request_duration_seconds_count{method="GET",route="/api/v1/signals/:id",status="404"} 1`,
		`ordertune_confirmations_total{outcome="submitted"} 1`,
		`ordertune_ibkr_handshakes_total{result="ok"} 1`,
		`ordertune_ibkr_sessions{state="ready"} 3`,
		"ordertune_notification_outbox_events 7",
		"ordertune_notification_outbox_oldest_seconds 1.5",
		`ordertune_ibkr_requests_total{endpoint="/iserver/account/{account}/orders",status="429"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if strings.Contains(out, "DU1234567") {
		t.Error("an account id leaked into a label")
	}
}

// TestEveryPoolIsExportedUnderItsName registers two pools, as serve does
// with its main, lease and account-lock pools: both are scraped, each
// under its own pool label.
func TestEveryPoolIsExportedUnderItsName(t *testing.T) {
	m := New()
	for _, name := range []string{"main", "account_locks"} {
		// No connection is made until one is acquired.
		p, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?pool_max_conns=3")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		m.RegisterPool(name, p)
	}
	body := scrape(t, m)
	for _, want := range []string{
		`ordertune_db_pool_max_connections{pool="main"} 3`,
		`ordertune_db_pool_max_connections{pool="account_locks"} 3`,
		`ordertune_db_pool_empty_acquires_total{pool="account_locks"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the scrape lacks %s", want)
		}
	}
}
