package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/logging/logtest"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

// tradeEnv is the HTTP server with accounts and trading over a fresh
// database, a simulator over HTTP, an admin and two subscribers (A, B),
// each with a fully authenticated session.
type tradeEnv struct {
	srv     *httptest.Server
	pool    *pgxpool.Pool
	sim     *tradetest.Env
	auth    *auth.Service
	trading *trading.Service
	logs    *logtest.Sink // the server's log, at debug level
	admin   user
	a, b    user
}

type user struct {
	id, cookie string
}

func newTradeEnv(t *testing.T) *tradeEnv {
	t.Helper()
	pool, as, sim := newTradeParts(t)
	ts, err := trading.New(trading.Config{Pool: pool, Broker: sim.Broker, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Sink{}
	srv := httptest.NewServer(New(Deps{Log: zerolog.New(logs).Level(zerolog.DebugLevel), Pool: pool, Auth: as, Trading: ts}).Handler())
	t.Cleanup(srv.Close)
	e := &tradeEnv{srv: srv, pool: pool, sim: sim, auth: as, trading: ts, logs: logs}
	e.admin = e.user(t, "admin")
	e.a, e.b = e.user(t, "subscriber"), e.user(t, "subscriber")
	for _, u := range []user{e.a, e.b} {
		readyToTrade(t, sim, ts, u.id)
	}
	return e
}

// publish publishes the signal body describes as the admin and returns it.
func (e *tradeEnv) publish(t *testing.T, body map[string]any) trading.Signal {
	t.Helper()
	st, b := e.call(t, e.admin, http.MethodPost, "/signals", body)
	if st != http.StatusCreated {
		t.Fatalf("publish = %d %s", st, b)
	}
	return decodeAs[trading.Signal](t, b)
}

// confirmBuy confirms a buy of signalID as u with the idempotency key.
func (e *tradeEnv) confirmBuy(t *testing.T, u user, signalID, key string) {
	t.Helper()
	if st, body := e.call(t, u, http.MethodPost, "/signals/"+signalID+"/confirm", map[string]string{"side": "BUY"}, "Idempotency-Key", key); st != http.StatusCreated {
		t.Fatalf("confirm = %d %s", st, body)
	}
}

// newTradeParts returns what a trading server is built of: a fresh
// database, accounts with cheap password hashing, and a simulator with a
// broker paced for tests.
func newTradeParts(t *testing.T) (*pgxpool.Pool, *auth.Service, *tradetest.Env) {
	t.Helper()
	pool := pgtest.Pool(t)
	as, err := auth.New(auth.Config{Pool: pool, Argon2: auth.Argon2Params{Time: 1, Memory: 8, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	sim := tradetest.NewEnv(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{OrdersListInterval: 50 * time.Millisecond, PerSecond: 1000, Burst: 1000}},
		tradetest.SimBrokerOptions{
			Limits: ibkr.PacerLimits{Global: 500, LiveOrders: rate.Every(60 * time.Millisecond), Trades: 1, Tickle: 1, PortfolioAccounts: 1}})
	return pool, as, sim
}

// readyToTrade connects userID's paper account at the simulator and sets
// its position size to five shares.
func readyToTrade(t *testing.T, sim *tradetest.Env, ts *trading.Service, userID string) {
	t.Helper()
	sim.Connect(t, userID, "")
	if _, err := ts.SetPositionSize(context.Background(), userID, trading.PositionSize{Mode: trading.SizeShares, Value: ptrTo("5")}); err != nil {
		t.Fatal(err)
	}
}

// createSignal publishes, as adminID through the service, the entry signal
// newSignalBody describes.
func createSignal(t *testing.T, ts *trading.Service, adminID string) trading.Signal {
	t.Helper()
	g, err := ts.CreateSignal(context.Background(), adminID, trading.NewSignal{Ticker: "AAPL", Strategy: "II", Kind: "entry",
		SignalDate: "2026-11-20", EntryDate: time.Now().AddDate(0, 0, 7).Format(time.DateOnly), RefClose: "187.25", RSI2: "3.1", Return2D: "-0.042",
		EntryMode: "next_open_market", ExpiresAt: time.Now().Add(time.Hour).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func ptrTo[T any](v T) *T { return &v }

// user makes a user with a fully authenticated session, stored the way
// the auth service stores sessions (the SHA-256 of a random id).
func (e *tradeEnv) user(t *testing.T, role string) user {
	t.Helper()
	id := tradetest.NewUser(t, e.pool, role)
	b := make([]byte, 32)
	rand.Read(b)
	sid := hex.EncodeToString(b)
	h := sha256.Sum256([]byte(sid))
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO sessions (id_hash, user_id, full_auth, created_at, last_seen_at) VALUES ($1, $2, true, now(), now())`, h[:], id); err != nil {
		t.Fatal(err)
	}
	return user{id: id, cookie: sid}
}

// stepUp marks u's session as stepped up for the next five minutes, as
// POST /auth/step-up would (auth's tests prove that route).
func (e *tradeEnv) stepUp(t *testing.T, u user) {
	t.Helper()
	h := sha256.Sum256([]byte(u.cookie))
	if _, err := e.pool.Exec(context.Background(), `UPDATE sessions SET step_up_until = now() + interval '5 minutes' WHERE id_hash = $1`, h[:]); err != nil {
		t.Fatal(err)
	}
}

// call sends a request as u (zero user: anonymous; a bearer token when
// cookie starts with "Bearer ") and returns the status and body.
func (e *tradeEnv) call(t *testing.T, u user, method, path string, body any, header ...string) (int, []byte) {
	t.Helper()
	req := newRequest(t, method, e.srv.URL+"/api/v1"+path, body)
	switch {
	case len(u.cookie) > 7 && u.cookie[:7] == "Bearer ":
		req.Header.Set("Authorization", u.cookie)
	case u.cookie != "":
		req.AddCookie(&http.Cookie{Name: "ordertune_session", Value: u.cookie})
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func decodeAs[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %T: %v; body %s", v, err, b)
	}
	return v
}

func newSignalBody(mod func(map[string]any)) map[string]any {
	m := map[string]any{"ticker": "AAPL", "strategy": "II", "kind": "entry", "signal_date": "2026-11-20", "entry_date": time.Now().AddDate(0, 0, 7).Format(time.DateOnly),
		"ref_close": "187.25", "rsi2": "3.1", "return_2d": "-0.042", "entry_mode": "next_open_market",
		"expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}
	if mod != nil {
		mod(m)
	}
	return m
}

func TestSignalsPublishListWithdraw(t *testing.T) {
	e := newTradeEnv(t)
	_, token, err := e.auth.CreateToken(context.Background(), e.admin.id, "feed", []string{auth.ScopeSignalsWrite}, "")
	if err != nil {
		t.Fatal(err)
	}
	bot := user{cookie: "Bearer " + token}
	tests := []struct {
		name string
		who  user
		body map[string]any
		want int
	}{
		{"admin", e.admin, newSignalBody(nil), http.StatusCreated},
		{"token with signals:write", bot, newSignalBody(func(m map[string]any) { m["ticker"] = "MSFT" }), http.StatusCreated},
		{"subscriber", e.a, newSignalBody(nil), http.StatusForbidden},
		{"anonymous", user{}, newSignalBody(nil), http.StatusUnauthorized},
		{"limit mode without limit", e.admin, newSignalBody(func(m map[string]any) { m["entry_mode"] = "next_open_limit" }), http.StatusUnprocessableEntity},
		{"float price", e.admin, newSignalBody(func(m map[string]any) { m["ref_close"] = 187.25 }), http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if st, body := e.call(t, tt.who, http.MethodPost, "/signals", tt.body); st != tt.want {
				t.Errorf("status = %d, want %d; body %s", st, tt.want, body)
			}
		})
	}
	st, body := e.call(t, e.a, http.MethodGet, "/signals", nil)
	list := decodeAs[struct {
		Items      []trading.Signal `json:"items"`
		NextCursor *string          `json:"next_cursor"`
	}](t, body)
	if st != http.StatusOK || len(list.Items) != 2 || list.NextCursor != nil || list.Items[0].Ticker != "MSFT" || list.Items[1].RefClose != "187.25" {
		t.Fatalf("list = %d %s, want the two signals newest first", st, body)
	}
	// Pagination walks both with limit=1.
	st, body = e.call(t, e.a, http.MethodGet, "/signals?limit=1", nil)
	first := decodeAs[page[trading.Signal]](t, body)
	if st != http.StatusOK || len(first.Items) != 1 || first.NextCursor == nil {
		t.Fatalf("page 1 = %d %s", st, body)
	}
	_, body = e.call(t, e.a, http.MethodGet, "/signals?limit=1&cursor="+*first.NextCursor, nil)
	if second := decodeAs[page[trading.Signal]](t, body); len(second.Items) != 1 || second.Items[0].ID != list.Items[1].ID || second.NextCursor != nil {
		t.Errorf("page 2 = %s", body)
	}
	id := list.Items[0].ID
	if st, _ := e.call(t, e.a, http.MethodDelete, "/signals/"+id, nil); st != http.StatusForbidden {
		t.Errorf("subscriber withdraw = %d, want 403", st)
	}
	if st, _ := e.call(t, e.admin, http.MethodDelete, "/signals/"+id, nil); st != http.StatusNoContent {
		t.Errorf("admin withdraw = %d, want 204", st)
	}
	_, body = e.call(t, e.a, http.MethodGet, "/signals?status=open", nil)
	if open := decodeAs[page[trading.Signal]](t, body); len(open.Items) != 1 {
		t.Errorf("open signals after withdrawal = %d, want 1", len(open.Items))
	}
	_, body = e.call(t, e.a, http.MethodGet, "/signals/"+id, nil)
	if g := decodeAs[trading.Signal](t, body); g.Status != "withdrawn" {
		t.Errorf("withdrawn signal status = %q", g.Status)
	}
}

func TestConfirmOverHTTP(t *testing.T) {
	e := newTradeEnv(t)
	g := e.publish(t, newSignalBody(nil))
	g2 := e.publish(t, newSignalBody(func(m map[string]any) { m["ticker"] = "NVDA" }))

	st, body := e.call(t, e.a, http.MethodGet, "/signals/"+g.ID+"/preview", nil)
	p := decodeAs[map[string]any](t, body)
	if st != http.StatusOK || p["quantity"] != float64(5) || p["estimated_value"] != "936.25" || p["order_type"] != "MKT" {
		t.Errorf("preview = %d %s", st, body)
	}
	confirm := func(u user, signal, key string, side string) (int, []byte) {
		hdr := []string{}
		if key != "" {
			hdr = []string{"Idempotency-Key", key}
		}
		return e.call(t, u, http.MethodPost, "/signals/"+signal+"/confirm", map[string]string{"side": side}, hdr...)
	}
	type answer struct {
		Status int
		Code   string
		State  string
	}
	get := func(st int, body []byte) answer {
		m := decodeAs[map[string]any](t, body)
		a := answer{Status: st}
		a.Code, _ = m["code"].(string)
		a.State, _ = m["status"].(string)
		if st >= 400 {
			a.State = ""
		}
		return a
	}
	steps := []struct {
		name              string
		user              user
		signal, key, side string
		want              answer
	}{
		{"no key", e.a, g.ID, "", "BUY", answer{Status: 400, Code: "invalid_argument"}},
		{"first", e.a, g.ID, "k1", "BUY", answer{Status: 201, State: "submitted"}},
		{"same key again", e.a, g.ID, "k1", "BUY", answer{Status: 200, State: "submitted"}},
		{"new key, same signal and side", e.a, g.ID, "k2", "BUY", answer{Status: 200, State: "submitted"}},
		{"same key, other body", e.a, g2.ID, "k1", "BUY", answer{Status: 422, Code: "invalid_argument"}},
		{"wrong side", e.a, g2.ID, "k3", "SELL", answer{Status: 422, Code: "invalid_argument"}},
		{"unknown signal", e.a, "6f1c1e9a-3b7d-4c1e-9a55-0d4f1e2a3b4c", "k4", "BUY", answer{Status: 404, Code: "not_found"}},
	}
	for _, s := range steps {
		st, body := confirm(s.user, s.signal, s.key, s.side)
		if diff := cmp.Diff(s.want, get(st, body)); diff != "" {
			t.Errorf("%s (-want +got):\n%s\nbody %s", s.name, diff, body)
		}
	}
	// IBKR's answer lost after it took the order: 202 and unknown.
	e.sim.Fault(t, ibkrsim.Fault{Path: "/iserver/account/*/orders", Kind: ibkrsim.FaultTimeoutAfterAccept, Count: 1})
	st, body = confirm(e.a, g2.ID, "k5", "BUY")
	if diff := cmp.Diff(answer{Status: 202, State: "unknown"}, get(st, body)); diff != "" {
		t.Errorf("timeout after accept (-want +got):\n%s\nbody %s", diff, body)
	}
	if n := len(e.sim.Orders(t)); n != 2 {
		t.Errorf("orders at the simulator = %d, want 2", n)
	}
	// IBKR asks a question off the allowlist: the confirmation fails, and
	// the problem carries IBKR's code and the failed confirmation.
	g3 := e.publish(t, newSignalBody(func(m map[string]any) { m["ticker"] = "MSFT" }))
	e.sim.Fault(t, ibkrsim.Fault{Path: "/iserver/account/*/orders", Kind: ibkrsim.FaultReplyQuestion, Value: json.RawMessage(`"o999"`), Count: 1})
	st, body = confirm(e.a, g3.ID, "k6", "BUY")
	failed := decodeAs[Problem](t, body)
	if st != http.StatusUnprocessableEntity || failed.Code != "broker_question" || failed.Confirmation == nil ||
		failed.Confirmation.Status != trading.StatusFailed || failed.Confirmation.SignalID != g3.ID || failed.Confirmation.UserID != "" {
		t.Errorf("failed confirm = %d %s, want 422 broker_question with the failed confirmation", st, body)
	}
	// Settings round trip. Lowering needs no step-up; switching from
	// shares to dollars may raise the size, so it does.
	if st, body = e.call(t, e.a, http.MethodPut, "/settings/position-size", map[string]any{"mode": "shares", "value": "4"}); st != http.StatusOK {
		t.Errorf("lower position size = %d %s", st, body)
	}
	if st, body = e.call(t, e.a, http.MethodPut, "/settings/position-size", map[string]any{"mode": "dollars", "value": "2500.50"}); st != http.StatusForbidden || !bytes.Contains(body, []byte(`"step_up_required"`)) {
		t.Errorf("raise position size without step-up = %d %s, want 403 step_up_required", st, body)
	}
	e.stepUp(t, e.a)
	st, body = e.call(t, e.a, http.MethodPut, "/settings/position-size", map[string]any{"mode": "dollars", "value": "2500.50"})
	if st != http.StatusOK || string(bytes.TrimSpace(body)) != `{"position_size":{"mode":"dollars","value":"2500.5"}}` {
		t.Errorf("put position size = %d %s", st, body)
	}
	if st, body = e.call(t, e.a, http.MethodPut, "/settings/position-size", map[string]any{"mode": "dollars", "value": 2500}); st != http.StatusUnprocessableEntity {
		t.Errorf("numeric value = %d %s, want 422", st, body)
	}
	if st, body = e.call(t, e.b, http.MethodGet, "/settings", nil); st != http.StatusOK || string(bytes.TrimSpace(body)) != `{"position_size":{"mode":"shares","value":"5"}}` {
		t.Errorf("B's settings = %d %s", st, body)
	}
}
