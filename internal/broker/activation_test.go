package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// activations records OnActivated calls, checking each runs in the
// transaction that made the connection connected.
type activations struct {
	mu  sync.Mutex
	got []string
}

func (a *activations) record(ctx context.Context, tx pgx.Tx, userID string, mode Mode) error {
	var status string
	if err := tx.QueryRow(ctx, `SELECT status FROM broker_connections WHERE user_id = $1 AND mode = $2`, userID, string(mode)).Scan(&status); err != nil {
		return err
	}
	if status != string(StatusConnected) {
		return fmt.Errorf("called with the connection %s", status)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, userID+"/"+string(mode))
	return nil
}

func (a *activations) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.got...)
}

// tests counts the Test Connection runs audited for userID.
func (e *env) tests(userID string) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_events
		WHERE user_id = $1 AND action = 'broker.connection_tested'`, userID).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) status(userID string, mode Mode) Status {
	e.t.Helper()
	var s Status
	if err := e.pool.QueryRow(context.Background(), `SELECT status FROM broker_connections WHERE user_id = $1 AND mode = $2`,
		userID, string(mode)).Scan(&s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// TestActivationCheck: credentials IBKR does not know yet are
// pending_activation; the check re-tests them at most every 30 minutes,
// and when the simulator learns the consumer (IBKR activated the key) the
// next round makes them connected and tells the user, once. After three
// days of pending they are left alone.
func TestActivationCheck(t *testing.T) {
	acts := &activations{}
	e := newEnv(t, envOptions{fake: true, onActivated: acts.record})
	ctx := context.Background()

	u := e.user()
	in, consumer := e.sim.registerConsumer("DU3000001")
	if _, err := e.svc.Save(ctx, u, Paper, in, Actor{UserID: u}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Test(ctx, u, Paper, nil, Actor{UserID: u}); err != nil {
		t.Fatal(err)
	}
	if got := e.status(u, Paper); got != StatusPendingActivation {
		t.Fatalf("status after the first test = %s, want pending_activation", got)
	}

	round := func(want int) {
		t.Helper()
		n, err := e.svc.CheckPendingActivations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("round activated %d, want %d", n, want)
		}
	}
	round(0) // re-tested: not active yet
	if n := e.tests(u); n != 2 {
		t.Errorf("%d tests after the first round, want 2", n)
	}
	e.clock.Advance(10 * time.Minute)
	round(0)
	if n := e.tests(u); n != 2 {
		t.Errorf("re-tested after 10 minutes (%d tests)", n)
	}
	e.clock.Advance(20 * time.Minute)
	round(0)
	if n := e.tests(u); n != 3 {
		t.Errorf("%d tests after 30 minutes, want 3", n)
	}
	if got := acts.list(); len(got) != 0 {
		t.Errorf("activated while IBKR does not know the key: %v", got)
	}

	e.sim.addConsumer(consumer) // IBKR activates the key
	e.clock.Advance(ActivationInterval)
	round(1)
	if got := e.status(u, Paper); got != StatusConnected {
		t.Errorf("status after activation = %s, want connected", got)
	}
	e.clock.Advance(ActivationInterval)
	round(0)
	if diff := cmp.Diff([]string{u + "/paper"}, acts.list()); diff != "" {
		t.Errorf("activations (-want +got):\n%s", diff)
	}

	// Pending for more than three days: no longer re-tested.
	late := e.user()
	in, consumer = e.sim.registerConsumer("DU3000002")
	if _, err := e.svc.Save(ctx, late, Paper, in, Actor{UserID: late}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Test(ctx, late, Paper, nil, Actor{UserID: late}); err != nil {
		t.Fatal(err)
	}
	for e.clock.Advance(ActivationInterval); e.clock.Now().Before(time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC).Add(ActivationWindow + 2*time.Hour)); e.clock.Advance(6 * time.Hour) {
		round(0)
	}
	before := e.tests(late)
	e.sim.addConsumer(consumer)
	e.clock.Advance(ActivationWindow)
	round(0)
	if n := e.tests(late); n != before {
		t.Errorf("re-tested after the three days (%d tests, %d before)", n, before)
	}
	if got := e.status(late, Paper); got != StatusPendingActivation {
		t.Errorf("status = %s, want still pending_activation", got)
	}
}

// TestActivationCheckOnReplicas: two replicas running a round at the same
// time test each pending connection once.
func TestActivationCheckOnReplicas(t *testing.T) {
	acts := &activations{}
	e := newEnv(t, envOptions{fake: true, onActivated: acts.record})
	other, err := New(Config{Pool: e.pool, Ring: e.ring, Now: e.clock.Now, Cache: CacheConfig{Now: e.clock.Now},
		IBKR: e.svc.ibkrOpts, OnActivated: acts.record})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var users []string
	for i := range 4 {
		u := e.user()
		in, consumer := e.sim.registerConsumer(fmt.Sprintf("DU400000%d", i))
		if _, err := e.svc.Save(ctx, u, Paper, in, Actor{UserID: u}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Test(ctx, u, Paper, nil, Actor{UserID: u}); err != nil {
			t.Fatal(err)
		}
		e.sim.addConsumer(consumer)
		users = append(users, u)
	}
	e.clock.Advance(ActivationInterval)
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i, svc := range []*Service{e.svc, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := svc.CheckPendingActivations(ctx)
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		}()
	}
	wg.Wait()
	if counts[0]+counts[1] != len(users) {
		t.Errorf("the replicas activated %v, want %d in all", counts, len(users))
	}
	for _, u := range users {
		if n := e.tests(u); n != 2 {
			t.Errorf("user %s: %d tests, want 2 (the user's and one re-test)", u, n)
		}
	}
	if n := len(acts.list()); n != len(users) {
		t.Errorf("%d activations told, want %d", n, len(users))
	}
}
