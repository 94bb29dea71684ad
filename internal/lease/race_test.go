package lease

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/postgres/pgtest"
)

// waitBlocked waits until a statement containing text waits for a lock in
// owner's database.
func waitBlocked(t *testing.T, owner *pgxpool.Pool, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := owner.QueryRow(context.Background(), `
			SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND strpos(query, $1) > 0`,
			text).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no statement %q waits for a lock", text)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRenewKeepsALeaseAcquiredWhileItRan is the renew/acquire race seen
// under load: an Acquire whose statement started before a renewal but
// whose lease reached memory after the renewal read the held leases was
// judged by that renewal — not in its answer, acquired before it started —
// and dropped as lost, although the row was live and this replica's. The
// interleaving is forced with row locks held by a third connection.
func TestRenewKeepsALeaseAcquiredWhileItRan(t *testing.T) {
	pool := pgtest.Pool(t)
	owner := pgtest.OwnerPool(t, pool)
	ctx := context.Background()
	var mu sync.Mutex
	var lost []Key
	a := newManager(t, pool, "a", Config{OnLost: func(k Key) { mu.Lock(); lost = append(lost, k); mu.Unlock() }})
	k1 := Key{UserID: newUser(t, pool), Mode: "paper"}
	if _, err := a.Acquire(ctx, k1); err != nil {
		t.Fatal(err)
	}
	// k's row was another replica's, now expired: a takes it over.
	k := Key{UserID: newUser(t, pool), Mode: "paper"}
	if _, err := pool.Exec(ctx, `
		INSERT INTO broker_session_leases (user_id, mode, owner, owner_url, generation, acquired_at, expires_at)
		VALUES ($1, $2, 'z', 'http://z', 4, now() - interval '1 minute', now() - interval '1 second')`, k.UserID, k.Mode); err != nil {
		t.Fatal(err)
	}

	lockK, err := owner.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lockK.Rollback(ctx)
	if _, err := lockK.Exec(ctx, `SELECT 1 FROM broker_session_leases WHERE user_id = $1 FOR UPDATE`, k.UserID); err != nil {
		t.Fatal(err)
	}
	acquired := make(chan error, 1)
	go func() { _, err := a.Acquire(ctx, k); acquired <- err }()
	waitBlocked(t, owner, "INSERT INTO broker_session_leases")

	// The renewal starts after the Acquire's statement and reads the
	// held leases before the Acquire stores k.
	lockK1, err := owner.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lockK1.Rollback(ctx)
	if _, err := lockK1.Exec(ctx, `SELECT 1 FROM broker_session_leases WHERE user_id = $1 FOR UPDATE`, k1.UserID); err != nil {
		t.Fatal(err)
	}
	type result struct {
		n   int
		err error
	}
	renewed := make(chan result, 1)
	go func() { n, err := a.Renew(ctx); renewed <- result{n, err} }()
	waitBlocked(t, owner, "UPDATE broker_session_leases")

	// The Acquire finishes first, then the renewal.
	if err := lockK.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-acquired; err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	if err := lockK1.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-renewed; r.err != nil || r.n != 1 {
		t.Fatalf("Renew = %d, %v; want k1 renewed", r.n, r.err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(lost) > 0 {
		t.Errorf("the renewal dropped %v as lost", lost)
	}
	if gen, ok := a.Held(k); !ok || gen != 5 {
		t.Errorf("Held(k) = %d, %v after the race; want generation 5", gen, ok)
	}
	if o, ok, err := a.owner(ctx, `user_id = $1 AND mode = $2`, k.UserID, k.Mode); err != nil || !ok || o.Replica != "a" {
		t.Fatalf("k's row: %+v, %v, %v; want a's live lease", o, ok, err)
	}
	// The next renewal renews both.
	if n, err := a.Renew(ctx); err != nil || n != 2 {
		t.Fatalf("second Renew = %d, %v; want 2", n, err)
	}
}

// TestNoLeaseLostUnderLoad runs three replicas' managers on one database,
// renewing every few milliseconds while requests for 300 tenants arrive
// at random replicas at once, as nginx's round robin sends them. No lease
// expires (the TTL is long, and each renews on a connection of its own, as
// `ordertune serve` does) and none is released, so none may be reported
// lost.
func TestNoLeaseLostUnderLoad(t *testing.T) {
	pool := pgtest.Pool(t)
	renewPool := func() *pgxpool.Pool {
		cfg := pool.Config()
		cfg.MinConns, cfg.MaxConns = 1, 1
		p, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var lost []string
	var ms []*Manager
	for _, name := range []string{"a", "b", "c"} {
		var m *Manager
		m = newManager(t, pool, name, Config{TTL: time.Minute, RenewEvery: 3 * time.Millisecond, RenewPool: renewPool(), OnLost: func(k Key) {
			o, live, err := m.owner(context.Background(), `user_id = $1 AND mode = $2`, k.UserID, k.Mode)
			mu.Lock()
			lost = append(lost, fmt.Sprintf("%s lost %s (row live %v, owner %q, %v)", name, k.UserID, live, o.Replica, err))
			mu.Unlock()
		}})
		ms = append(ms, m)
	}
	var keys []Key
	for range 300 {
		keys = append(keys, Key{UserID: newUser(t, pool), Mode: "paper"})
	}
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() { defer wg.Done(); m.Run(ctx) }()
	}
	var reqs sync.WaitGroup
	for _, k := range keys {
		for range 3 {
			reqs.Add(1)
			go func() {
				defer reqs.Done()
				time.Sleep(rand.N(200 * time.Millisecond))
				if _, _, err := ms[rand.N(len(ms))].Route(ctx, k); err != nil {
					t.Errorf("Route: %v", err)
				}
			}()
		}
	}
	reqs.Wait()
	time.Sleep(50 * time.Millisecond) // a few more renewals
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for i, l := range lost {
		if i < 5 {
			t.Error(l)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d leases reported lost while no lease expired", len(lost))
	}
	held := 0
	for _, m := range ms {
		held += m.Count()
	}
	if held != len(keys) {
		t.Fatalf("the replicas hold %d leases, want %d", held, len(keys))
	}
}

// TestGenerationNeverRepeats: a released lease keeps its row and its
// generation, so every new owner's generation is new — a replica still
// caching a session of generation 1 never mistakes a later lease for it —
// and a release is no take-over.
func TestGenerationNeverRepeats(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	var takeovers atomic.Int64
	onTakeover := func() { takeovers.Add(1) }
	a := newManager(t, pool, "a", Config{OnTakeover: onTakeover})
	b := newManager(t, pool, "b", Config{OnTakeover: onTakeover})
	k := Key{UserID: newUser(t, pool), Mode: "paper"}
	want := int64(0)
	step := func(m *Manager, release func(*Manager) error) {
		t.Helper()
		want++
		if gen, err := m.Acquire(ctx, k); err != nil || gen != want {
			t.Fatalf("%s.Acquire = %d, %v; want generation %d", m.Replica(), gen, err, want)
		}
		if err := release(m); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := b.Owner(ctx, k.UserID); ok {
			t.Fatal("a released lease still has an owner")
		}
	}
	all := func(m *Manager) error { _, err := m.ReleaseAll(ctx); m.Undrain(); return err }
	user := func(m *Manager) error { return m.ReleaseUser(ctx, k.UserID) }
	step(a, all)
	step(b, user)
	step(a, user) // a again: not generation 1 again
	step(a, all)  // and not its own previous one either
	if takeovers.Load() != 0 {
		t.Fatalf("%d take-overs counted for released leases, want 0", takeovers.Load())
	}
	if _, err := b.Acquire(ctx, k); err != nil {
		t.Fatal(err)
	}
	expireRows(t, pool)
	if gen, err := a.Acquire(ctx, k); err != nil || gen != want+2 {
		t.Fatalf("a.Acquire after b died = %d, %v; want %d", gen, err, want+2)
	}
	if takeovers.Load() != 1 {
		t.Fatalf("take-overs = %d after taking a dead replica's lease, want 1", takeovers.Load())
	}
}

// TestRouteTakesBackItsOwnLiveLease: a replica whose memory lost a lease
// its row still gives it (owner look-up first) serves the tenant itself
// under the same generation, rather than forward to itself.
func TestRouteTakesBackItsOwnLiveLease(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	a := newManager(t, pool, "a", Config{})
	k := Key{UserID: newUser(t, pool), Mode: "live"}
	gen, err := a.Acquire(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	delete(a.held, k)
	a.mu.Unlock()
	if o, here, err := a.Route(ctx, k); err != nil || !here {
		t.Fatalf("a.Route on its own live row = %+v, %v, %v; want here", o, here, err)
	}
	if g, ok := a.Held(k); !ok || g != gen {
		t.Fatalf("Held = %d, %v; want generation %d", g, ok, gen)
	}
}
