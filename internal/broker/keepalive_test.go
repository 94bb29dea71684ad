package broker

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/clocktest"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/logging/logtest"
)

func TestLostBrokerageSessionIsReopened(t *testing.T) {
	e := newEnv(t, envOptions{fake: true, sim: ibkrsim.Config{SessionIdleTimeout: 6 * time.Minute}})
	ctx := ctxT(t)
	u, _, c := e.warmSession(t, ctx)

	// Nobody tickled for 7 minutes: IBKR closed the brokerage session, and
	// the next tickle says authenticated:false.
	e.clock.Advance(7 * time.Minute)
	c.sweep(ctx)
	clocktest.WaitFor(t, "the brokerage session to be reopened", func() bool {
		st, _ := c.State(u)
		return st.State == StateReady && st.LastTickleAt != nil
	})
	mustAccounts(t, ctx, c, u)
	e.wantHandshakes(t, 1, "after the repair (a lost brokerage session needs a re-init, not a new LST)")

	// "no bridge" on a request is repaired the same way.
	e.clock.Advance(7 * time.Minute)
	mustAccounts(t, ctx, c, u)
	e.wantHandshakes(t, 1, "")
}

func TestCompetingSessionDetected(t *testing.T) {
	e := newEnv(t, envOptions{fake: true})
	ctx := ctxT(t)
	u, in, c := e.warmSession(t, ctx)

	// Another login takes the brokerage session.
	e.sim.fault(map[string]any{"path": "/tickle", "kind": "competing", "count": 1, "consumer_key": in.ConsumerKey})
	e.clock.Advance(2 * time.Minute)
	if s := c.sweep(ctx); s.competing != 1 {
		t.Errorf("sweep saw %d competing sessions, want 1", s.competing)
	}
	st, _ := c.State(u)
	if st.State != StateCompeting || !st.Competing {
		t.Fatalf("state = %+v, want competing", st)
	}
	ov, err := e.svc.Overview(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if s := ov.Connections[Paper].Session; s == nil || !s.Competing {
		t.Errorf("GET /broker does not show the competing login: %+v", s)
	}
	var found bool
	for _, s := range c.States() {
		if s.UserID == u && s.Competing {
			found = true
		}
	}
	if !found {
		t.Error("admin sessions do not show the competing login")
	}

	// The keep-alive does not fight for the session.
	e.clock.Advance(2 * time.Minute)
	c.sweep(ctx)
	if st, _ := c.State(u); st.State != StateCompeting {
		t.Errorf("after another keep-alive pass: %s, want still competing", st.State)
	}

	// The user acting again takes it back.
	mustAccounts(t, ctx, c, u)
	if st, _ := c.State(u); st.State != StateReady || st.Competing {
		t.Errorf("after the user's request: %+v, want ready", st)
	}
	e.wantHandshakes(t, 1, "")
}

func TestKeepAliveSupervisor(t *testing.T) {
	e := newEnv(t, envOptions{cache: CacheConfig{TickleEvery: 40 * time.Millisecond}})
	ctx := ctxT(t)
	u, in, c := e.warmSession(t, ctx)

	// The first tickles fail; the supervisor carries on.
	e.sim.fault(map[string]any{"path": "/tickle", "kind": "status", "value": 500, "count": 3, "consumer_key": in.ConsumerKey})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(runCtx, zerolog.Nop())
	}()
	clocktest.WaitFor(t, "a good tickle after the failures", func() bool {
		st, _ := c.State(u)
		return e.sim.tickles.Load() >= 4 && st.LastError == "" && st.LastTickleAt != nil
	})
	if st, _ := c.State(u); st.State != StateReady {
		t.Errorf("state = %+v, want ready", st)
	}
	stop()
	<-done // Run returns once its context ends
	mustAccounts(t, ctx, c, u)
}

// A keep-alive pass that panics is logged and the supervisor goes on.
func TestSupervisorSurvivesPanics(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 3 {
			panic("clock broke")
		}
		return time.Now()
	}
	c := newCache(CacheConfig{Now: now, TickleEvery: 10 * time.Millisecond}, ibkr.Options{}, nil, nil)
	var logs logtest.Sink
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx, zerolog.New(&logs))
	}()
	clocktest.WaitFor(t, "passes after the panics", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls >= 8
	})
	stop()
	<-done
	if got := strings.Count(logs.String(), "panicked"); got != 3 {
		t.Errorf("logged %d panics, want 3:\n%s", got, logs.String())
	}
}

// During IBKR's restart window the keep-alive sends nothing; after it, the
// brokerage session the restart ended is re-opened without the user doing
// anything, with the same live session token.
func TestKeepAlivePausesDuringIBKRsRestart(t *testing.T) {
	var restarting atomic.Bool
	e := newEnv(t, envOptions{fake: true, cache: CacheConfig{Maintenance: func(now time.Time) (time.Time, bool) {
		return now.Add(time.Hour), restarting.Load()
	}}})
	ctx := ctxT(t)
	u, _, c := e.warmSession(t, ctx)

	restarting.Store(true)
	e.sim.sim.Load().StartMaintenance()
	before := e.sim.tickles.Load()
	e.clock.Advance(2 * time.Minute)
	if s := c.sweep(ctx); !s.paused || s.tickled != 0 || s.repairs != 0 {
		t.Errorf("sweep during the restart: %+v", s)
	}
	if got := e.sim.tickles.Load(); got != before {
		t.Errorf("%d tickles during the restart", got-before)
	}

	e.sim.sim.Load().EndMaintenance()
	restarting.Store(false)
	inits := e.sim.inits.Load()
	e.clock.Advance(time.Minute)
	c.sweep(ctx)
	clocktest.WaitFor(t, "the keep-alive to re-open the brokerage session after the restart", func() bool {
		st, _ := c.State(u)
		return e.sim.inits.Load() == inits+1 && st.State == StateReady
	})
	// The re-opened session takes orders' calls at once, with no repair.
	mustAccounts(t, ctx, c, u)
	if got := e.sim.inits.Load(); got != inits+1 {
		t.Errorf("brokerage session opened %d times after the restart, want once (by the keep-alive)", got-inits)
	}
	e.wantHandshakes(t, 1, "after the restart (it ends the brokerage session, not the LST)")
}

// A session a flight just made ready (handshake, brokerage session,
// accounts) was alive at IBKR that moment: its first tickle is due a
// TickleEvery later, not at the next sweep. Every new session used to get
// a tickle within one sweep of being made, thousands in a cold storm.
func TestNewSessionIsNotTickledAtOnce(t *testing.T) {
	e := newEnv(t, envOptions{fake: true})
	ctx := ctxT(t)
	u, _, c := e.warmSession(t, ctx)
	tickles := func() int64 { return e.sim.tickles.Load() }
	before := tickles()
	c.sweep(ctx)
	if n := tickles() - before; n != 0 {
		t.Errorf("the sweep right after the session was made tickled %d times, want 0", n)
	}
	e.clock.Advance(time.Minute - time.Second) // TickleEvery's default is a minute
	c.sweep(ctx)
	if n := tickles() - before; n != 0 {
		t.Errorf("a sweep before TickleEvery passed tickled %d times, want 0", n)
	}
	e.clock.Advance(time.Second)
	c.sweep(ctx)
	if n := tickles() - before; n != 1 {
		t.Errorf("the sweep TickleEvery after the session was made tickled %d times, want 1", n)
	}
	if st, _ := c.State(u); st.State != StateReady || st.LastTickleAt == nil {
		t.Errorf("state after the first tickle = %+v, want ready and tickled", st)
	}
	e.wantHandshakes(t, 1, "")
}
