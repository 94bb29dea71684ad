package tradetest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ibkrsim/simtest"
)

// Env is an IBKR simulator served over real HTTP, and a SimBroker talking
// to it.
type Env struct {
	Sim *ibkrsim.Server
	// URL is the simulator's root (the control API lives under /sim).
	URL    string
	Broker *SimBroker
}

// NewEnv starts a simulator with cfg on a loopback port for the test's
// lifetime. opts.BaseURL is filled in.
func NewEnv(t testing.TB, cfg ibkrsim.Config, opts SimBrokerOptions) *Env {
	t.Helper()
	sim, srv := simtest.Serve(t, cfg)
	opts.BaseURL = srv.URL + ibkrsim.APIPrefix
	return &Env{Sim: sim, URL: srv.URL, Broker: NewSimBroker(opts)}
}

// Connect registers a fresh simulated consumer with account (empty: a new
// paper account) and links userID to it.
func (e *Env) Connect(t testing.TB, userID, account string) ibkrsim.UserCredentials {
	t.Helper()
	uc := simtest.AddConsumer(t, e.Sim, account)
	if err := e.Broker.Link(userID, uc); err != nil {
		t.Fatal(err)
	}
	return uc
}

// Orders returns every order the simulator received, read over HTTP from
// GET /sim/orders.
func (e *Env) Orders(t testing.TB) []ibkrsim.SimOrder {
	t.Helper()
	var out []ibkrsim.SimOrder
	e.call(t, http.MethodGet, "/sim/orders", nil, &out)
	return out
}

// Fault injects a fault through POST /sim/faults.
func (e *Env) Fault(t testing.TB, f ibkrsim.Fault) {
	t.Helper()
	e.call(t, http.MethodPost, "/sim/faults", f, nil)
}

// Auction runs the opening (open) or closing auction through the control API.
func (e *Env) Auction(t testing.TB, open bool) {
	t.Helper()
	p := "/sim/auction/close"
	if open {
		p = "/sim/auction/open"
	}
	e.call(t, http.MethodPost, p, map[string]any{}, nil)
}

func (e *Env) call(t testing.TB, method, path string, body, out any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: status %d", method, path, resp.StatusCode)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
}

// NewUser inserts a user with role ("admin" or "subscriber") straight
// into the users table and returns its id. The password hash is a
// placeholder no password matches: these users never log in.
func NewUser(t testing.TB, pool *pgxpool.Pool, role string) string {
	t.Helper()
	var id string
	err := pool.QueryRow(context.Background(), `
		INSERT INTO users (email, role, password_hash, totp_enabled, created_at, updated_at)
		VALUES ('u-' || gen_random_uuid() || '@example.test', $1, '!', true, now(), now()) RETURNING id`, role).Scan(&id)
	if err != nil {
		t.Fatalf("new user: %v", err)
	}
	return id
}
