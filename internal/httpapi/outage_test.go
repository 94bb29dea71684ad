package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/clocktest"
	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/logging/logtest"
	"github.com/ordertune/ordertune/internal/postgres/localpg"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/seal"
)

// TestDatabaseOutageIsUnavailable stops PostgreSQL under a running server:
// the session middleware (a signed-in browser, an API token), sign-in and
// the confirm path answer 503 unavailable with a Retry-After, never a 500.
func TestDatabaseOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cluster, url := pgtest.OwnCluster(t, localpg.Options{Fast: true})
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	env := &authEnv{t: t, clock: clocktest.New(time.Now()), logs: &logtest.Sink{}}
	log := zerolog.New(env.logs)
	env.startAuth(auth.Config{Pool: pool, Sealer: seal.RandomRing("test"), Log: log})
	d := Deps{Log: log, Pool: pool, Auth: env.svc}
	env.features = wireAllFeatures(t, &d)
	env.serve(d)

	admin := env.newAccount(auth.Admin, true)
	sub := env.newAccount(auth.Subscriber, true)
	browser := env.signIn(sub)
	_, tok, err := env.svc.CreateToken(ctx, admin.user.ID, "outage", []string{auth.ScopeSignalsWrite}, "")
	if err != nil {
		t.Fatal(err)
	}
	program := env.program(tok)
	f := env.features
	readyToTrade(t, f.sim, f.trading, sub.user.ID)
	sig := createSignal(t, f.trading, admin.user.ID)
	if r := browser.do(http.MethodGet, "/api/v1/me", nil); r.status != http.StatusOK {
		t.Fatalf("before the outage: %d %s", r.status, r.body)
	}

	if err := cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	for round := range 2 { // the pool's dead connections first, then refused connects
		for _, tc := range []struct {
			c            *client
			method, path string
			body         any
		}{
			{browser, http.MethodGet, "/api/v1/me", nil},
			{browser, http.MethodGet, "/api/v1/confirmations", nil},
			{browser, http.MethodPost, "/api/v1/signals/" + sig.ID + "/confirm", map[string]string{"side": "BUY"}},
			{program, http.MethodGet, "/api/v1/signals", nil},
			{env.browser(), http.MethodPost, "/api/v1/auth/login", map[string]string{"email": sub.user.Email, "password": sub.password}},
		} {
			c := *tc.c
			c.header = c.header.Clone()
			c.header.Set("Idempotency-Key", "outage-1")
			r := c.do(tc.method, tc.path, tc.body)
			if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
				t.Errorf("round %d: %s %s: %d (Retry-After %q) %s, want 503 with Retry-After", round, tc.method, tc.path, r.status, r.header.Get("Retry-After"), r.body)
				continue
			}
			if p := r.problem(t); p.Code != errs.Unavailable {
				t.Errorf("round %d: %s %s: code %q, want unavailable", round, tc.method, tc.path, p.Code)
			}
		}
	}

	// The confirm path itself, past the session check: its own database
	// failure maps the same way.
	_, _, cerr := f.trading.Confirm(ctx, sub.user.ID, sig.ID, "outage-2", "BUY")
	if cerr == nil {
		t.Fatal("a confirm with the database down succeeded")
	}
	rec := httptest.NewRecorder()
	env.srv.handleError(cerr, env.srv.e.NewContext(httptest.NewRequest(http.MethodPost, "/api/v1/signals/x/confirm", nil), rec))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("confirm with the database down (%v): %d %s, want 503 with Retry-After", cerr, rec.Code, rec.Body)
	}
}
