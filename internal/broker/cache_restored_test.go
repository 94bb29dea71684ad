package broker

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/clocktest"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// restoredLog records what OnSessionRestored is told; hold, while set,
// blocks the hook until it is closed.
type restoredLog struct {
	mu   sync.Mutex
	got  []SessionRestored
	hold chan struct{}
}

func (l *restoredLog) add(r SessionRestored) {
	l.mu.Lock()
	hold := l.hold
	l.got = append(l.got, r)
	l.mu.Unlock()
	if hold != nil {
		<-hold
	}
}

func (l *restoredLog) all() []SessionRestored {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]SessionRestored(nil), l.got...)
}

func (l *restoredLog) reasons() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.got {
		out = append(out, r.Reason)
	}
	return out
}

// Each time a tenant's session is (re)established the hook is told once,
// with why, after the requests waiting for the session went on: the first
// token (however many requests wait for it), a repair after IBKR
// restarted, the brokerage session re-opened, a competing login's session
// taken back and a scheduled renewal; accounts queried again are not a
// reconnect.
func TestSessionRestoredHook(t *testing.T) {
	log := &restoredLog{hold: make(chan struct{})}
	e := newEnv(t, envOptions{fake: true, sim: ibkrsim.Config{SessionIdleTimeout: 6 * time.Minute},
		cache: CacheConfig{OnSessionRestored: log.add}})
	ctx := ctxT(t)
	u, in := e.connected("DU1234567")
	c := e.svc.Cache()
	wait := func(what string, n int) {
		t.Helper()
		clocktest.WaitFor(t, what, func() bool { return len(log.reasons()) >= n })
	}

	// 50 requests on a cold tenant share one handshake and are served
	// while the hook is still busy: it never holds them up.
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := c.Session(ctx, u); err != nil {
				t.Errorf("session: %v", err)
			}
		}()
	}
	wg.Wait()
	wait("the first session's hook", 1)
	log.mu.Lock()
	close(log.hold)
	log.hold = nil
	log.mu.Unlock()
	want := SessionRestored{Conn: Conn{UserID: u, Mode: Paper, ConsumerKey: in.ConsumerKey, AccountID: "DU1234567"}, Reason: RestoredNew}
	if diff := cmp.Diff([]SessionRestored{want}, log.all()); diff != "" {
		t.Fatalf("after 50 requests on a cold tenant (-want +got):\n%s", diff)
	}

	// Accounts queried again: the same session, nothing restored.
	s, _, err := c.Session(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	c.Report(u, s, ibkr.KindAccountsNotQueried)
	mustAccounts(t, ctx, c, u)

	// IBKR restarts: the 401 makes a new token.
	e.sim.restart()
	mustAccounts(t, ctx, c, u)
	wait("the repair's hook", 2)

	// The brokerage session expired idle: "no bridge", re-opened on the
	// same token.
	e.clock.Advance(7 * time.Minute)
	mustAccounts(t, ctx, c, u)
	wait("the re-opened brokerage session's hook", 3)

	// Another login takes the session; the next request takes it back
	// (a minute later: IBKR paces the questions' suppression).
	e.clock.Advance(time.Minute)
	e.sim.fault(map[string]any{"kind": "competing", "path": "/tickle", "count": 1})
	if ok, competing := c.tickle(ctx, c.tenant(u)); ok || !competing {
		t.Fatalf("tickle after another login: ok %v competing %v", ok, competing)
	}
	mustAccounts(t, ctx, c, u)
	wait("the take-back's hook", 4)

	// The token is due for renewal: renewed in the background.
	st, _ := c.State(u)
	e.clock.Set(st.RenewAt.Add(time.Second))
	mustAccounts(t, ctx, c, u)
	wait("the renewal's hook", 5)

	if diff := cmp.Diff([]string{RestoredNew, RestoredRepair, RestoredBrokerage, RestoredTakenBack, RestoredRenewal}, log.reasons()); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
	if got := e.sim.handshakes.Load(); got != 3 {
		t.Errorf("handshakes = %d, want 3 (the first, the repair, the renewal)", got)
	}
}
