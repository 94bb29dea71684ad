package broker

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/clocktest"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ibkrsim/simtest"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/seal"
	"github.com/ordertune/ordertune/internal/trading"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// newFakeClock returns a settable clock to share between the simulator, the
// IBKR client and the cache, so expiry and renewal are tested without
// sleeping.
func newFakeClock() *clocktest.Clock {
	return clocktest.New(time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC))
}

// simHost serves a simulator over real HTTP and counts what reaches it.
// restart swaps in a fresh simulator (all sessions and tokens forgotten)
// with the same consumers, as when IBKR restarts.
type simHost struct {
	t         testing.TB
	cfg       ibkrsim.Config
	srv       *httptest.Server
	sim       atomic.Pointer[ibkrsim.Server]
	mu        sync.Mutex
	consumers []ibkrsim.Consumer

	requests   atomic.Int64
	handshakes atomic.Int64
	tickles    atomic.Int64
	inits      atomic.Int64
	// hold, when set, holds every handshake until it is closed;
	// lstNow and lstMax count the handshakes being served and the most
	// at once.
	hold           atomic.Pointer[chan struct{}]
	lstNow, lstMax atomic.Int64
	// down makes IBKR unreachable: every connection is closed unanswered.
	down atomic.Bool
}

func newSimHost(t testing.TB, cfg ibkrsim.Config) *simHost {
	h := &simHost{t: t, cfg: cfg}
	h.sim.Store(ibkrsim.New(cfg))
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.down.Load() {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		h.requests.Add(1)
		switch r.URL.Path {
		case ibkrsim.APIPrefix + "/oauth/live_session_token":
			h.handshakes.Add(1)
			n := h.lstNow.Add(1)
			defer h.lstNow.Add(-1)
			for m := h.lstMax.Load(); n > m && !h.lstMax.CompareAndSwap(m, n); m = h.lstMax.Load() {
			}
			if hold := h.hold.Load(); hold != nil {
				<-*hold
			}
		case ibkrsim.APIPrefix + "/tickle":
			h.tickles.Add(1)
		case ibkrsim.APIPrefix + "/iserver/auth/ssodh/init":
			h.inits.Add(1)
		}
		h.sim.Load().ServeHTTP(w, r)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *simHost) baseURL() string { return h.srv.URL + ibkrsim.APIPrefix }

func (h *simHost) restart() {
	s := ibkrsim.New(h.cfg)
	h.mu.Lock()
	for _, c := range h.consumers {
		if err := s.AddConsumer(c); err != nil {
			h.t.Fatalf("restart: %v", err)
		}
	}
	h.mu.Unlock()
	h.sim.Store(s)
	h.srv.CloseClientConnections()
}

// register creates a consumer with account acct; add says whether the
// simulator learns about it (a consumer it does not know is "invalid
// consumer", as a key IBKR has not activated yet).
func (h *simHost) register(acct string, add bool) Input {
	h.t.Helper()
	in, c := h.registerConsumer(acct)
	if add {
		h.addConsumer(c)
	}
	return in
}

// registerConsumer creates a consumer without telling the simulator.
func (h *simHost) registerConsumer(acct string) (Input, ibkrsim.Consumer) {
	h.t.Helper()
	c, u := simtest.Register(h.t, acct)
	return Input{
		ConsumerKey: u.ConsumerKey, AccessToken: u.AccessToken, AccessTokenSecret: u.AccessTokenSecret,
		SignatureKeyPEM: u.SignaturePrivateKeyPEM, EncryptionKeyPEM: u.EncryptionPrivateKeyPEM,
		DHParams: u.DHPrimeHex, AccountID: u.AccountID,
	}, c
}

func (h *simHost) addConsumer(c ibkrsim.Consumer) {
	h.t.Helper()
	if err := h.sim.Load().AddConsumer(c); err != nil {
		h.t.Fatalf("add consumer: %v", err)
	}
	h.mu.Lock()
	h.consumers = append(h.consumers, c)
	h.mu.Unlock()
}

// fault injects a simulator fault over the control API.
func (h *simHost) fault(f map[string]any) {
	h.t.Helper()
	b, _ := json.Marshal(f)
	resp, err := http.Post(h.srv.URL+"/sim/faults", "application/json", bytes.NewReader(b))
	if err != nil {
		h.t.Fatalf("inject fault: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		h.t.Fatalf("inject fault %s: status %d", b, resp.StatusCode)
	}
}

// env is one test's world: a fresh database, a simulator and a Service.
type env struct {
	t     testing.TB
	pool  *pgxpool.Pool
	sim   *simHost
	ring  *seal.Ring
	svc   *Service
	clock *clocktest.Clock
}

type envOptions struct {
	sim   ibkrsim.Config
	cache CacheConfig
	// questions is Config.AllowedQuestions.
	questions []string
	fake      bool // share a fake clock between simulator, client and cache
	ring      *seal.Ring
	// onActivated is Config.OnActivated.
	onActivated func(ctx context.Context, tx pgx.Tx, userID string, mode Mode) error
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	e := &env{t: t, pool: pgtest.Pool(t), ring: o.ring}
	if e.ring == nil {
		e.ring = seal.RandomRing("k1")
	}
	var now func() time.Time
	if o.fake {
		e.clock = newFakeClock()
		now = e.clock.Now
		o.sim.Clock = now
		o.cache.Now = now
	}
	e.sim = newSimHost(t, o.sim)
	svc, err := New(Config{
		Pool: e.pool, Ring: e.ring, Now: now, Cache: o.cache, AllowedQuestions: o.questions,
		IBKR: ibkr.Options{BaseURL: e.sim.baseURL(), Now: now}, OnActivated: o.onActivated,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	return e
}

// user inserts a user and returns its id.
func (e *env) user() string {
	e.t.Helper()
	var id string
	err := e.pool.QueryRow(context.Background(), `INSERT INTO users (email, role, password_hash, created_at, updated_at)
		VALUES ('u' || gen_random_uuid() || '@example.com', 'subscriber', 'x', now(), now()) RETURNING id`).Scan(&id)
	if err != nil {
		e.t.Fatalf("insert user: %v", err)
	}
	return id
}

// connected returns a user with a saved, registered paper connection.
func (e *env) connected(acct string) (string, Input) {
	e.t.Helper()
	u := e.user()
	in := e.sim.register(acct, true)
	if _, err := e.svc.Save(context.Background(), u, Paper, in, Actor{UserID: u}); err != nil {
		e.t.Fatalf("save: %v", err)
	}
	return u, in
}

// secrets lists the secret strings of in that must never appear anywhere:
// the base64 bodies of the PEM keys (line by line), the access token
// secret and the account id.
func secrets(in Input) []string {
	return simtest.Secrets(ibkrsim.UserCredentials{
		SignaturePrivateKeyPEM: in.SignatureKeyPEM, EncryptionPrivateKeyPEM: in.EncryptionKeyPEM,
		AccessTokenSecret: in.AccessTokenSecret, AccountID: in.AccountID,
	})
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func pemOf(t testing.TB, k *rsa.PrivateKey) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

// buyer returns a function that places, for u, a market order for one AAPL
// share in u's active account under a new cOID each time (coidPrefix
// followed by b, c, ...).
func (e *env) buyer(t testing.TB, ctx context.Context, u, coidPrefix string) func() (trading.OrderState, error) {
	t.Helper()
	o := e.aaplOrder(t, ctx, u)
	n := 0
	return func() (trading.OrderState, error) {
		n++
		o.COID = coidPrefix + string(rune('a'+n))
		return e.svc.Orders().PlaceOrder(ctx, u, o)
	}
}

// aaplOrder returns a market order for one AAPL share in u's active
// account, without its cOID.
func (e *env) aaplOrder(t testing.TB, ctx context.Context, u string) trading.Order {
	t.Helper()
	acct, err := e.svc.ActiveAccount(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	contract, err := e.svc.Orders().ResolveContract(ctx, u, "AAPL")
	if err != nil {
		t.Fatal(err)
	}
	return trading.Order{Account: acct, Conid: contract.Conid, OrderType: trading.Market, Side: trading.Buy, Quantity: 1, TIF: "DAY"}
}

// wantCount fails the test unless query, a count(*), counts want rows;
// what names them.
func (e *env) wantCount(t testing.TB, want int, what, query string, args ...any) {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Errorf("%s = %d, want %d", what, n, want)
	}
}
