package lease

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/clocktest"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func newUser(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var id string
	err := pool.QueryRow(context.Background(), `
		INSERT INTO users (email, role, password_hash, totp_enabled, created_at, updated_at)
		VALUES ('u-' || gen_random_uuid() || '@example.test', 'subscriber', '!', true, now(), now()) RETURNING id`).Scan(&id)
	if err != nil {
		t.Fatalf("new user: %v", err)
	}
	return id
}

func newManager(t *testing.T, pool *pgxpool.Pool, replica string, cfg Config) *Manager {
	t.Helper()
	cfg.Pool, cfg.Replica, cfg.URL = pool, replica, "http://"+replica
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// expireRows moves every lease's expiry into the past, as if its owner
// died TTL ago.
func expireRows(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `UPDATE broker_session_leases SET expires_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
}

func TestOneOwnerAtATime(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	k := Key{UserID: newUser(t, pool), Mode: "paper"}
	var takeovers atomic.Int64
	a := newManager(t, pool, "a", Config{})
	b := newManager(t, pool, "b", Config{OnTakeover: func() { takeovers.Add(1) }})

	gen, err := a.Acquire(ctx, k)
	if err != nil || gen != 1 {
		t.Fatalf("a.Acquire = %d, %v; want generation 1", gen, err)
	}
	_, err = b.Acquire(ctx, k)
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Owner.Replica != "a" || busy.Owner.URL != "http://a" || busy.Owner.Generation != 1 {
		t.Fatalf("b.Acquire while a holds it: %v; want a BusyError naming a", err)
	}
	if o, ok, err := b.Owner(ctx, k.UserID); err != nil || !ok || o.Replica != "a" || o.Mode != "paper" {
		t.Fatalf("Owner = %+v, %v, %v", o, ok, err)
	}
	if _, ok := b.Held(k); ok || b.HeldUser(k.UserID) {
		t.Fatal("b believes it holds a's lease")
	}

	// a dies: its row expires, b takes it under a new generation.
	expireRows(t, pool)
	gen, err = b.Acquire(ctx, k)
	if err != nil || gen != 2 {
		t.Fatalf("b.Acquire after expiry = %d, %v; want generation 2", gen, err)
	}
	if takeovers.Load() != 1 {
		t.Fatalf("takeovers = %d, want 1", takeovers.Load())
	}
	// a still believes in its lease locally until its renewal tells it
	// otherwise; the renewal must not give it back.
	var lost []Key
	a.cfg.OnLost = func(k Key) { lost = append(lost, k) }
	if n, err := a.Renew(ctx); err != nil || n != 0 {
		t.Fatalf("a.Renew = %d, %v; want 0 renewed", n, err)
	}
	if len(lost) != 1 || lost[0] != k {
		t.Fatalf("a lost %v, want [%v]", lost, k)
	}
	if _, ok := a.Held(k); ok {
		t.Fatal("a still holds the lease after losing it")
	}
}

func TestRenewIsOneStatementForAllLeases(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	clock := clocktest.New(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	m := newManager(t, pool, "a", Config{TTL: 10 * time.Second, Now: clock.Now})
	var keys []Key
	for range 50 {
		k := Key{UserID: newUser(t, pool), Mode: "live"}
		if _, err := m.Acquire(ctx, k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	// Without renewal the local trust ends before TTL.
	clock.Advance(9500 * time.Millisecond)
	if m.Count() != 0 {
		t.Fatalf("Count = %d after TTL-margin without renewal, want 0", m.Count())
	}
	clock.Set(time.Date(2026, 12, 1, 12, 0, 5, 0, time.UTC))
	var calls int
	m.cfg.OnRenew = func(_ time.Duration, n int, err error) { calls++ }
	n, err := m.Renew(ctx)
	if err != nil || n != 50 || calls != 1 {
		t.Fatalf("Renew = %d, %v with %d calls; want 50 in one", n, err, calls)
	}
	clock.Advance(8 * time.Second) // 13 s after acquiring, 8 s after renewing
	if m.Count() != 50 {
		t.Fatalf("Count = %d after renewal, want 50", m.Count())
	}
	var inDB int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM broker_session_leases WHERE owner = 'a' AND expires_at > now() + interval '9 second'`).Scan(&inDB); err != nil {
		t.Fatal(err)
	}
	if inDB != 50 {
		t.Fatalf("%d rows extended in the database, want 50", inDB)
	}
}

func TestReleaseAllHandsOverAtOnce(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	a := newManager(t, pool, "a", Config{})
	b := newManager(t, pool, "b", Config{})
	k1 := Key{UserID: newUser(t, pool), Mode: "paper"}
	k2 := Key{UserID: newUser(t, pool), Mode: "live"}
	for _, k := range []Key{k1, k2} {
		if _, err := a.Acquire(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	a.Drain()
	if _, err := a.Acquire(ctx, Key{UserID: newUser(t, pool), Mode: "paper"}); !errors.Is(err, ErrDraining) {
		t.Fatalf("Acquire while draining: %v, want ErrDraining", err)
	}
	if _, ok := a.Held(k1); !ok {
		t.Fatal("draining dropped a held lease before ReleaseAll")
	}
	if n, err := a.ReleaseAll(ctx); err != nil || n != 2 {
		t.Fatalf("ReleaseAll = %d, %v; want 2", n, err)
	}
	if a.Count() != 0 {
		t.Fatal("leases still held after ReleaseAll")
	}
	// No wait for an expiry: b takes both at once.
	for _, k := range []Key{k1, k2} {
		if _, err := b.Acquire(ctx, k); err != nil {
			t.Fatalf("b.Acquire after a's release: %v", err)
		}
	}
	if err := b.ReleaseUser(ctx, k1.UserID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := b.Owner(ctx, k1.UserID); ok {
		t.Fatal("ReleaseUser left the lease")
	}
	if _, ok := b.Held(k2); !ok {
		t.Fatal("ReleaseUser dropped another user's lease")
	}
}

// TestConcurrentAcquireOneWinner races replicas for the same cold tenants:
// exactly one of them gets each lease.
func TestConcurrentAcquireOneWinner(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	ms := []*Manager{newManager(t, pool, "a", Config{}), newManager(t, pool, "b", Config{}), newManager(t, pool, "c", Config{})}
	for range 20 {
		k := Key{UserID: newUser(t, pool), Mode: "paper"}
		var wins atomic.Int64
		var wg sync.WaitGroup
		for _, m := range ms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := m.Acquire(ctx, k)
				var busy *BusyError
				switch {
				case err == nil:
					wins.Add(1)
				case errors.As(err, &busy):
				default:
					t.Errorf("Acquire: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d replicas won the lease of one tenant, want 1", wins.Load())
		}
	}
}

func TestRenewFailureDecays(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	clock := clocktest.New(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	m := newManager(t, pool, "a", Config{TTL: 6 * time.Second, Now: clock.Now})
	k := Key{UserID: newUser(t, pool), Mode: "paper"}
	if _, err := m.Acquire(ctx, k); err != nil {
		t.Fatal(err)
	}
	var lost []Key
	m.cfg.OnLost = func(k Key) { lost = append(lost, k) }
	clock.Advance(6 * time.Second)
	cctx, cancel := context.WithCancel(ctx)
	cancel() // the database cannot be reached
	if _, err := m.Renew(cctx); err == nil {
		t.Fatal("Renew on a cancelled context succeeded")
	}
	if len(lost) != 1 {
		t.Fatalf("lost = %v after failed renewals past the TTL, want the lease", lost)
	}
}

func TestRouteRemembersTheOwnerBriefly(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	clock := clocktest.New(time.Now())
	a := newManager(t, pool, "a", Config{})
	b := newManager(t, pool, "b", Config{Now: clock.Now})
	k := Key{UserID: newUser(t, pool), Mode: "paper"}
	if o, here, err := a.Route(ctx, k); err != nil || !here {
		t.Fatalf("a.Route on a free lease = %+v, %v, %v; want here", o, here, err)
	}
	o, here, err := b.Route(ctx, k)
	if err != nil || here || o.Replica != "a" || o.URL != "http://a" {
		t.Fatalf("b.Route = %+v, %v, %v; want a", o, here, err)
	}
	// a releases; b still forwards to it from memory until it forgets,
	// then takes the lease.
	if _, err := a.ReleaseAll(ctx); err != nil {
		t.Fatal(err)
	}
	if o, here, _ := b.Route(ctx, k); here || o.Replica != "a" {
		t.Fatalf("b.Route from memory = %+v, %v; want a", o, here)
	}
	b.Forget(k)
	if _, here, err := b.Route(ctx, k); err != nil || !here {
		t.Fatalf("b.Route after Forget = %v, %v; want here", here, err)
	}
	// And the memory alone expires.
	if _, err := b.ReleaseAll(ctx); err != nil {
		t.Fatal(err)
	}
	c := newManager(t, pool, "c", Config{})
	if _, here, _ := c.Route(ctx, k); !here {
		t.Fatal("c did not take the released lease")
	}
	b.draining = false
	if _, here, _ := b.Route(ctx, k); here {
		t.Fatal("b took c's lease")
	}
	clock.Advance(remoteFor)
	if _, err := c.ReleaseAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, here, err := b.Route(ctx, k); err != nil || !here {
		t.Fatalf("b.Route after its memory expired = %v, %v; want here", here, err)
	}
}

// TestConcurrentAcquireOnOneReplicaKeepsTheGeneration: requests racing on
// one replica for a cold tenant all get the same generation, so the
// session the first one prepares is not fenced off by the second.
func TestConcurrentAcquireOnOneReplicaKeepsTheGeneration(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	a := newManager(t, pool, "a", Config{})
	k := Key{UserID: newUser(t, pool), Mode: "paper"}
	var wg sync.WaitGroup
	gens := make([]int64, 8)
	for i := range gens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Straight to the database, as when memory has nothing yet.
			a.mu.Lock()
			delete(a.held, k)
			a.mu.Unlock()
			g, err := a.Acquire(ctx, k)
			if err != nil {
				t.Error(err)
			}
			gens[i] = g
		}()
	}
	wg.Wait()
	for _, g := range gens {
		if g != 1 {
			t.Fatalf("generations %v, want all 1", gens)
		}
	}
}

// BenchmarkRenew1000 is the lease renewal's cost for a replica holding
// 1,000 tenants: one statement per interval (scripts/BENCHMARKS.md).
func BenchmarkRenew1000(b *testing.B) {
	pool := pgtest.Pool(b)
	ctx := context.Background()
	m, err := New(Config{Pool: pool, Replica: "a", URL: "http://a"})
	if err != nil {
		b.Fatal(err)
	}
	rows, err := pool.Query(ctx, `
		INSERT INTO users (email, role, password_hash, totp_enabled, created_at, updated_at)
		SELECT 'u-' || gen_random_uuid() || '@example.test', 'subscriber', '!', true, now(), now() FROM generate_series(1, 1000)
		RETURNING id::text`)
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if _, err := m.Acquire(ctx, Key{UserID: id, Mode: "paper"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if n, err := m.Renew(ctx); err != nil || n != 1000 {
			b.Fatalf("Renew = %d, %v", n, err)
		}
	}
}

// TestHeldUserInEitherMode: routing asks HeldUser whether this replica
// holds any of a user's sessions; it looks the user's keys up by mode, so
// a lease in each mode must answer, and no other mode can be held.
func TestHeldUserInEitherMode(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	a := newManager(t, pool, "a", Config{})
	for _, mode := range []string{"live", "paper"} {
		k := Key{UserID: newUser(t, pool), Mode: mode}
		if a.HeldUser(k.UserID) {
			t.Fatalf("%s: HeldUser before the lease was acquired", mode)
		}
		if _, err := a.Acquire(ctx, k); err != nil {
			t.Fatal(err)
		}
		if !a.HeldUser(k.UserID) {
			t.Errorf("HeldUser is false for a user whose %s lease this replica holds", mode)
		}
	}
	if _, err := a.Acquire(ctx, Key{UserID: newUser(t, pool), Mode: "demo"}); err == nil {
		t.Error("a lease in a mode that is neither live nor paper was acquired; HeldUser would not see it")
	}
}
