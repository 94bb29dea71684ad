package broker

import (
	"context"
	"errors"
	"testing"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/lease"
	"github.com/ordertune/ordertune/internal/trading"
)

// replica is a second Service on e's database and simulator, as another
// `ordertune serve` process would be, with a lease manager of its own.
func (e *env) replica(name string) (*Service, *lease.Manager) {
	e.t.Helper()
	var c *Cache
	m, err := lease.New(lease.Config{Pool: e.pool, Replica: name, URL: "http://" + name,
		OnLost: func(k lease.Key) { c.LeaseLost(k) }})
	if err != nil {
		e.t.Fatal(err)
	}
	svc, err := New(Config{Pool: e.pool, Ring: e.ring, Cache: CacheConfig{Leases: m},
		IBKR: ibkr.Options{BaseURL: e.sim.baseURL()}})
	if err != nil {
		e.t.Fatal(err)
	}
	c = svc.Cache()
	return svc, m
}

func isServedElsewhere(err error) bool {
	var busy *lease.BusyError
	return errs.CodeOf(err) == errs.BrokerUnavailable && errors.As(err, &busy) && errors.Is(err, trading.ErrServedElsewhere)
}

// TestOnlyTheLeaseOwnerHandshakes runs two replicas over one database: the
// one that holds a tenant's lease hand-shakes and acts; the other refuses
// without touching IBKR, keeps nothing alive, and takes over only once the
// lease is gone — under a new generation, with a handshake of its own.
func TestOnlyTheLeaseOwnerHandshakes(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	u, _ := e.connected("DU2223334")
	a, la := e.replica("a")
	b, lb := e.replica("b")

	mustAccounts(t, ctx, a.Cache(), u)
	if got := e.sim.handshakes.Load(); got != 1 {
		t.Fatalf("handshakes after a's first call = %d, want 1", got)
	}
	err := b.Cache().Do(ctx, u, func(context.Context, *ibkr.Session, Conn) error {
		t.Error("b acted on a tenant a owns")
		return nil
	})
	if !isServedElsewhere(err) {
		t.Fatalf("b.Do = %v; want broker_unavailable naming the owner", err)
	}
	if got := e.sim.handshakes.Load(); got != 1 {
		t.Fatalf("b hand-shook for a's tenant: %d handshakes", got)
	}
	b.Cache().sweep(ctx)
	if e.sim.tickles.Load() != 0 {
		t.Fatal("b tickled a tenant it does not own")
	}

	// a dies: its lease expires; b takes the tenant over.
	if _, err := e.pool.Exec(ctx, `UPDATE broker_session_leases SET expires_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	mustAccounts(t, ctx, b.Cache(), u)
	if got := e.sim.handshakes.Load(); got != 2 {
		t.Fatalf("handshakes after b's take-over = %d, want 2", got)
	}
	if gen, ok := lb.Held(lease.Key{UserID: u, Mode: "paper"}); !ok || gen != 2 {
		t.Fatalf("b holds generation %d (%v), want 2", gen, ok)
	}
	// a was only partitioned: its renewal finds the lease gone, and its
	// cached session (superseded at IBKR by now) is never used again.
	if _, err := la.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := a.Cache().State(u); st.State == StateReady {
		t.Fatalf("a still shows a ready session after losing the lease: %+v", st)
	}
	a.Cache().sweep(ctx)
	if e.sim.tickles.Load() != 0 {
		t.Fatal("a tickled a session whose lease it lost")
	}
	if err := a.Cache().Do(ctx, u, func(context.Context, *ibkr.Session, Conn) error { return nil }); !isServedElsewhere(err) {
		t.Fatalf("a.Do after losing the lease = %v; want served elsewhere", err)
	}

	// A graceful hand-over: b releases, a takes the tenant at once.
	if _, err := lb.ReleaseAll(ctx); err != nil {
		t.Fatal(err)
	}
	mustAccounts(t, ctx, a.Cache(), u)
	if got := e.sim.handshakes.Load(); got != 3 {
		t.Fatalf("handshakes after the hand-over = %d, want 3", got)
	}
}

// TestLeaseLostKeepsASessionHeldAgain: a loss reported while this replica
// holds the session's very generation again (it took the lease back, its
// row never having had another owner) keeps the session; one made under
// an older generation is dropped.
func TestLeaseLostKeepsASessionHeldAgain(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	u, _ := e.connected("DU2223335")
	a, la := e.replica("a")
	k := lease.Key{UserID: u, Mode: "paper"}
	mustAccounts(t, ctx, a.Cache(), u)
	a.Cache().LeaseLost(k)
	mustAccounts(t, ctx, a.Cache(), u)
	if got := e.sim.handshakes.Load(); got != 1 {
		t.Fatalf("handshakes = %d after a loss reported for a lease still held, want 1", got)
	}
	// Released and taken again: a new generation, so the old session goes.
	if _, err := la.ReleaseAll(ctx); err != nil {
		t.Fatal(err)
	}
	la.Undrain()
	if gen, err := la.Acquire(ctx, k); err != nil || gen != 2 {
		t.Fatalf("Acquire after the release = %d, %v; want generation 2", gen, err)
	}
	a.Cache().LeaseLost(k)
	if st, _ := a.Cache().State(u); st.State == StateReady {
		t.Fatalf("a session of generation 1 survived under generation 2: %+v", st)
	}
	mustAccounts(t, ctx, a.Cache(), u)
	if got := e.sim.handshakes.Load(); got != 2 {
		t.Fatalf("handshakes = %d after the generation changed, want 2", got)
	}
}

// BenchmarkLeaseMove is what moving a tenant between replicas costs per
// request: the lease changes hands and the new owner makes a new session
// (handshake, brokerage session, accounts) before its call
// (scripts/BENCHMARKS.md, "Replicas": why requests are forwarded instead).
func BenchmarkLeaseMove(b *testing.B) {
	e := newEnv(b, envOptions{sim: ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}}})
	ctx := context.Background()
	u, _ := e.connected("DU3334445")
	a, la := e.replica("a")
	c, lc := e.replica("c")
	reps := []*Service{a, c}
	mans := []*lease.Manager{la, lc}
	call := func(s *Service) {
		if err := s.Cache().Do(ctx, u, func(ctx context.Context, s *ibkr.Session, _ Conn) error {
			_, err := s.Accounts(ctx)
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
	call(a)
	i := 0
	for b.Loop() {
		if _, err := mans[i%2].ReleaseAll(ctx); err != nil {
			b.Fatal(err)
		}
		i++
		call(reps[i%2])
		reps[(i+1)%2].Cache().LeaseLost(lease.Key{UserID: u, Mode: "paper"})
		mans[(i+1)%2].Undrain()
	}
}

// BenchmarkOwnerCall is the same call on the replica that owns the tenant:
// the baseline a forward adds its HTTP hop to.
func BenchmarkOwnerCall(b *testing.B) {
	e := newEnv(b, envOptions{sim: ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}}})
	ctx := context.Background()
	u, _ := e.connected("DU3334446")
	a, _ := e.replica("a")
	for b.Loop() {
		if err := a.Cache().Do(ctx, u, func(ctx context.Context, s *ibkr.Session, _ Conn) error {
			_, err := s.Accounts(ctx)
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
}
