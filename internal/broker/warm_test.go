package broker

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestWarm makes a cold tenant's session ready and then costs no call to
// IBKR while the session is ready.
func TestWarm(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	u, _ := e.connected("DU1234567")
	c := e.svc.Cache()
	if err := c.Warm(ctx, u); err != nil {
		t.Fatalf("warm a cold tenant: %v", err)
	}
	if h, i := e.sim.handshakes.Load(), e.sim.inits.Load(); h != 1 || i != 1 {
		t.Fatalf("after warming a cold tenant: %d handshakes, %d brokerage sessions at IBKR, want 1 and 1", h, i)
	}
	mustAccounts(t, ctx, c, u) // ready: accounts were queried
	before := e.sim.requests.Load()
	for range 3 {
		if err := e.svc.Orders().Warm(ctx, u); err != nil {
			t.Fatalf("warm a ready tenant: %v", err)
		}
	}
	if n := e.sim.requests.Load() - before; n != 0 {
		t.Errorf("warming a ready tenant sent %d requests to IBKR, want 0", n)
	}
	if err := c.Warm(ctx, e.user()); err == nil {
		t.Error("warming a tenant without a connection succeeded, want an error")
	}
}

// TestFlightsAtOnceAreBounded has more cold tenants than MaxFlights warm
// up at once while IBKR holds their handshakes: no more handshakes than
// MaxFlights are at IBKR at once, and every tenant's session is made.
func TestFlightsAtOnceAreBounded(t *testing.T) {
	const flights, tenants = 2, 6
	e := newEnv(t, envOptions{cache: CacheConfig{MaxFlights: flights}})
	ctx := ctxT(t)
	users := make([]string, tenants)
	for i := range users {
		users[i], _ = e.connected("")
	}
	hold := make(chan struct{})
	e.sim.hold.Store(&hold)
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release)
	c := e.svc.Cache()
	errc := make([]error, tenants)
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() { errc[i] = c.Warm(ctx, u) })
	}
	// A bound on the wait for what happens at once, not a timing.
	for deadline := time.Now().Add(20 * time.Second); e.sim.lstNow.Load() < flights && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	// Room for a handshake over the bound to show up.
	time.Sleep(100 * time.Millisecond)
	release()
	wg.Wait()
	for i := range users {
		if errc[i] != nil {
			t.Errorf("tenant %d: %v", i, errc[i])
		}
	}
	if m := e.sim.lstMax.Load(); m != flights {
		t.Errorf("at most %d handshakes at IBKR at once, want %d (MaxFlights)", m, flights)
	}
	if h := c.Handshakes(); h != tenants {
		t.Errorf("handshakes = %d, want %d", h, tenants)
	}
}

// TestOrderAfterWarmWaitsForNoConnection: the confirm places its order
// under the account's lock, holding a connection of the lock pool, right
// after Warm. The allowlist the order answers IBKR's questions by is read
// by Warm, so the order never waits for the main pool under the lock;
// here every connection of the pool is taken while it is placed. An
// order without a Warm just before reads the allowlist itself and waits.
func TestOrderAfterWarmWaitsForNoConnection(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	u, _ := e.connected("DU1234567")
	o := e.aaplOrder(t, ctx, u)
	if err := e.svc.Orders().Warm(ctx, u); err != nil {
		t.Fatal(err)
	}
	for range e.pool.Stat().MaxConns() {
		c, err := e.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
	}
	place := func(coid string) error {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		o.COID = coid
		_, err := e.svc.Orders().PlaceOrder(pctx, u, o)
		return err
	}
	if err := place("warm-a"); err != nil {
		t.Fatalf("an order right after Warm, with every pooled connection taken: %v, want it placed", err)
	}
	if err := place("warm-b"); err == nil {
		t.Error("an order without a Warm before it was placed with every pooled connection taken; it should have read the allowlist and waited")
	}
}
