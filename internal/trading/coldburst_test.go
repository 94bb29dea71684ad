package trading_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ibkrsim/simtest"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/seal"
	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

// handshakeGate holds every live session token request at the simulator's
// door while it is shut, and counts those it holds.
type handshakeGate struct {
	next   http.Handler
	shut   atomic.Bool
	held   atomic.Int64
	open   chan struct{}
	opened sync.Once
}

func (g *handshakeGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.shut.Load() && strings.HasSuffix(r.URL.Path, "/oauth/live_session_token") {
		g.held.Add(1)
		<-g.open
	}
	g.next.ServeHTTP(w, r)
}

func (g *handshakeGate) release() { g.opened.Do(func() { close(g.open) }) }

// TestColdBurstHoldsNoConnectionDuringHandshakes has many tenants without
// an IBKR session confirm at once, wired as the server wires them (the
// account locks in a pool of their own, both pools smaller than the burst),
// while IBKR holds every handshake. Every cold tenant's handshake reaches
// IBKR, a warm tenant's confirm and an unrelated query go through
// meanwhile, and once IBKR answers, every confirm places exactly one
// order. A confirm that made its session while holding its account lock's
// connection would let only as many handshakes start as the lock pool has
// connections, and leave every other order (warm or cold) waiting for one.
func TestColdBurstHoldsNoConnectionDuringHandshakes(t *testing.T) {
	t.Parallel()
	const tenants, conns, lockConns = 12, 4, 3
	ctx := context.Background()
	db := pgtest.Pool(t)
	pool, locks := smallPool(t, db, conns), smallPool(t, db, lockConns)

	sim := ibkrsim.New(fastSim())
	gate := &handshakeGate{next: sim, open: make(chan struct{})}
	srv := httptest.NewServer(gate)
	t.Cleanup(srv.Close)
	t.Cleanup(gate.release)
	bs, err := broker.New(broker.Config{Pool: pool, Ring: seal.RandomRing("test"),
		IBKR:  ibkr.Options{BaseURL: srv.URL + ibkrsim.APIPrefix},
		Cache: broker.CacheConfig{CallTimeout: 20 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := trading.New(trading.Config{Pool: pool, LockPool: locks, Broker: bs.Orders(), OrderTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{pool: pool, svc: svc, admin: tradetest.NewUser(t, pool, "admin")}
	connect := func() string {
		u := tradetest.NewUser(t, pool, "subscriber")
		saveConnection(t, bs, svc, u, simtest.AddConsumer(t, sim, ""), "1")
		return u
	}
	g := w.signal(t, nil)
	// One tenant first, with IBKR answering: its session is warm, the
	// contract's conid is cached, and the burst needs IBKR only for
	// sessions and orders.
	warm := connect()
	if c, _, err := svc.Confirm(ctx, warm, g.ID, "first", trading.Buy); err != nil || c.Status != trading.StatusSubmitted {
		t.Fatalf("first confirm = (%s, %v), want submitted", c.Status, err)
	}
	g2 := w.signal(t, nil)
	users := make([]string, tenants)
	for i := range users {
		users[i] = connect()
	}

	gate.shut.Store(true)
	got := make([]trading.Confirmation, tenants)
	errc := make([]error, tenants)
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			got[i], _, errc[i] = svc.Confirm(ctx, u, g.ID, fmt.Sprintf("burst-%d", i), trading.Buy)
		})
	}
	// Not a timing: a bound on how long the test waits for something that
	// either happens at once or never (until the handshakes time out).
	deadline := time.Now().Add(15 * time.Second)
	for gate.held.Load() < tenants && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := gate.held.Load(); n < tenants {
		t.Errorf("%d of %d handshakes reached IBKR; the others wait behind confirms holding the pool's connections", n, tenants)
	}
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	var n int
	err = pool.QueryRow(qctx, `SELECT count(*) FROM users WHERE role = 'subscriber'`).Scan(&n)
	if err != nil {
		t.Errorf("an unrelated query while IBKR holds %d handshakes: %v (pool: %d of %d connections acquired)",
			gate.held.Load(), err, pool.Stat().AcquiredConns(), conns)
	}
	wc, _, err := svc.Confirm(qctx, warm, g2.ID, "warm", trading.Buy)
	cancel()
	if err != nil || wc.Status != trading.StatusSubmitted {
		t.Errorf("a warm tenant's confirm while IBKR holds %d handshakes = (%s, %v), want submitted (lock pool: %d of %d connections acquired)",
			gate.held.Load(), wc.Status, err, locks.Stat().AcquiredConns(), lockConns)
	}
	gate.release()
	wg.Wait()

	for i := range users {
		if errc[i] != nil || got[i].Status != trading.StatusSubmitted {
			t.Errorf("tenant %d: confirm = (%s, %v), want submitted", i, got[i].Status, errc[i])
		}
	}
	var orders []ibkrsim.SimOrder
	_, body := simtest.Control(t, srv, http.MethodGet, "/sim/orders", nil)
	if err := json.Unmarshal(body, &orders); err != nil {
		t.Fatal(err)
	}
	byCOID := map[string]int{}
	for _, o := range orders {
		byCOID[o.COID]++
	}
	for i := range users {
		if got[i].ID != "" && byCOID[got[i].ID] != 1 {
			t.Errorf("tenant %d: %d orders with cOID %s, want 1", i, byCOID[got[i].ID], got[i].ID)
		}
	}
	if len(orders) != tenants+2 {
		t.Errorf("simulator holds %d orders, want %d (one per confirm)", len(orders), tenants+2)
	}
	if h := bs.Cache().Handshakes(); h != tenants+1 {
		t.Errorf("handshakes = %d, want %d (one per tenant)", h, tenants+1)
	}
}

// smallPool returns a pool of at most n connections to like's database,
// closed when t ends.
func smallPool(t *testing.T, like *pgxpool.Pool, n int32) *pgxpool.Pool {
	t.Helper()
	cfg := like.Config()
	cfg.MaxConns, cfg.MinConns = n, 0
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}
