package broker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// TestCompetingLogin: another login takes the user's brokerage session
// (the simulator's competing fault). The keep-alive sees it, records it
// and tells the user once; with the default setting the next order takes
// the session back (recorded, not told again), and with "wait" orders
// fail with nothing sent until the user changes the setting.
func TestCompetingLogin(t *testing.T) {
	e := newEnv(t, envOptions{sim: ibkrsim.Config{Pacing: ibkrsim.Pacing{TickleInterval: time.Millisecond}}})
	ctx := ctxT(t)
	u, _ := e.connected("DU1234567")
	var mu sync.Mutex
	var told []string
	e.svc.onCompeting = func(ctx context.Context, tx pgx.Tx, userID string, ev CompetingSession) error {
		mu.Lock()
		defer mu.Unlock()
		if userID != u || ev.AccountIDMasked != "DU•••4567" || ev.Message == "" {
			t.Errorf("notification for %s: %+v", userID, ev)
		}
		told = append(told, ev.Action+"/"+ev.OnCompeting)
		return nil
	}
	c := e.svc.Cache()
	buy := e.buyer(t, ctx, u, "comp-")
	place := func() error {
		_, err := buy()
		return err
	}
	compete := func() {
		t.Helper()
		e.sim.fault(map[string]any{"kind": "competing", "path": "/tickle", "count": 1})
		if ok, competing := c.tickle(ctx, c.tenant(u)); ok || !competing {
			st, _ := c.State(u)
			t.Fatalf("tickle after another login: ok %v competing %v (%+v)", ok, competing, st)
		}
		if st, _ := c.State(u); st.State != StateCompeting || !st.Competing {
			t.Fatalf("state = %+v, want competing", st)
		}
	}
	actions := func() []string {
		rows, err := e.pool.Query(ctx, `SELECT action FROM audit_events WHERE user_id = $1 AND action LIKE 'broker.session_%' ORDER BY id`, u)
		if err != nil {
			t.Fatal(err)
		}
		list, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return list
	}

	compete()
	if err := place(); err != nil {
		t.Fatalf("order with take_back: %v", err)
	}
	if st, _ := c.State(u); st.State != StateReady {
		t.Errorf("state after the take-over = %s, want ready", st.State)
	}

	if err := e.svc.SetSessionPreference(ctx, Actor{UserID: u}, u, CompetingWait); err != nil {
		t.Fatal(err)
	}
	compete()
	before := len(e.sim.sim.Load().Orders())
	if err := place(); errs.CodeOf(err) != errs.BrokerSessionCompeting {
		t.Fatalf("order with wait: %v, want broker_session_competing", err)
	}
	if got := len(e.sim.sim.Load().Orders()); got != before {
		t.Errorf("orders at IBKR went from %d to %d while waiting", before, got)
	}
	if st, _ := c.State(u); !st.Competing {
		t.Errorf("state while waiting = %+v, want competing", st)
	}
	if err := e.svc.SetSessionPreference(ctx, Actor{UserID: u}, u, "later"); errs.CodeOf(err) != errs.Invalid {
		t.Errorf("unknown preference: %v", err)
	}
	if err := e.svc.SetSessionPreference(ctx, Actor{UserID: u}, u, CompetingTakeBack); err != nil {
		t.Fatal(err)
	}
	if err := place(); err != nil {
		t.Fatalf("order after switching back to take_back: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"competing/take_back", "competing/wait"}, told); diff != "" {
		t.Errorf("notifications (-want +got):\n%s", diff)
	}
	want := []string{"broker.session_competing", "broker.session_taken_back", "broker.session_preference",
		// Seen by the keep-alive (told), then by the refused order.
		"broker.session_competing", "broker.session_competing", "broker.session_preference", "broker.session_taken_back"}
	if diff := cmp.Diff(want, actions()); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}
