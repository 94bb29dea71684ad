package broker

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/trading"
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

// TestWorkWithoutTakeBackLeavesTheOtherLogin: a call that may not take the
// session back (trading.WithoutTakeBack: reconciliation, the ledger's
// imports, the dashboard's positions) never signs another login out —
// neither when the keep-alive has already seen that login nor when the
// call finds it itself, re-opening a session it lost — and the user's
// next order still takes the session back.
func TestWorkWithoutTakeBackLeavesTheOtherLogin(t *testing.T) {
	e := newEnv(t, envOptions{sim: ibkrsim.Config{Pacing: ibkrsim.Pacing{TickleInterval: time.Millisecond}}})
	ctx := ctxT(t)
	u, in := e.connected("DU1234567")
	c := e.svc.Cache()
	buy := e.buyer(t, ctx, u, "left-")
	takeovers := func() int64 { return e.sim.sim.Load().Stats()[in.ConsumerKey].OtherLoginsSignedOut }
	calls := 0
	look := func() error {
		return c.Do(trading.WithoutTakeBack(ctx), u, func(ctx context.Context, s *ibkr.Session, _ Conn) error {
			calls++
			_, err := s.Accounts(ctx)
			return err
		})
	}
	// untouched: the other login still holds the session.
	untouched := func(what string, before int64) {
		t.Helper()
		if got := takeovers(); got != before {
			t.Errorf("%s: IBKR signed out %d other logins, want %d", what, got, before)
		}
		if st, _ := c.State(u); st.State != StateCompeting {
			t.Errorf("%s: state %s, want competing", what, st.State)
		}
	}
	left := func(what string, err error, before int64) {
		t.Helper()
		if errs.CodeOf(err) != errs.BrokerSessionCompeting {
			t.Errorf("%s: %v, want broker_session_competing", what, err)
		}
		untouched(what, before)
	}
	if _, err := buy(); err != nil {
		t.Fatal(err)
	}

	// Seen by the keep-alive: refused before any call to IBKR.
	e.otherLogin(t, ctx, c, u)
	before := takeovers()
	left("a look while the keep-alive knows", look(), before)
	if calls != 0 {
		t.Errorf("%d calls reached IBKR, want none", calls)
	}
	// The portfolio needs only the live session token: the positions are
	// read while the other login keeps the brokerage session.
	if _, err := e.svc.Orders().Positions(trading.WithoutTakeBack(ctx), u); err != nil {
		t.Errorf("positions while another login holds the session: %v", err)
	}
	untouched("the positions", before)
	if _, err := buy(); err != nil {
		t.Fatalf("the order after it: %v", err)
	}
	if got := takeovers(); got != before+1 {
		t.Errorf("the order made %d take-overs, want 1", got-before)
	}

	// Found by the call: the other login takes the session during it, and
	// the repair opens the brokerage session only if it is free.
	e.sim.fault(map[string]any{"kind": "competing", "path": "/iserver/accounts", "count": 1})
	before = takeovers()
	left("a look that finds the other login", look(), before)
	left("the next look", look(), before)
	if calls != 1 {
		t.Errorf("%d calls reached IBKR, want the one that found the other login", calls)
	}
	if _, err := buy(); err != nil {
		t.Fatalf("the order after it: %v", err)
	}
	if got := takeovers(); got != before+1 {
		t.Errorf("the order made %d take-overs, want 1", got-before)
	}
	if st, _ := c.State(u); st.State != StateReady {
		t.Errorf("state after the order: %s, want ready", st.State)
	}
}

// TestOrderJoiningALookTakesTheSessionBack: an order that joins the flight
// of a call that may not take the session back (a look at the positions
// re-opening a lost session while another login holds it) still takes the
// session back, and the look gets the session too.
func TestOrderJoiningALookTakesTheSessionBack(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	u, in := e.connected("DU1234567")
	c := e.svc.Cache()
	buy := e.buyer(t, ctx, u, "join-")
	if _, err := buy(); err != nil {
		t.Fatal(err)
	}
	before := e.sim.sim.Load().Stats()[in.ConsumerKey].OtherLoginsSignedOut
	// Every flight waits for a token until both callers are in.
	for range cap(c.flights) {
		c.flights <- struct{}{}
	}
	e.sim.fault(map[string]any{"kind": "competing", "path": "/iserver/accounts", "count": 1})
	looked := make(chan error, 1)
	go func() {
		looked <- c.Do(trading.WithoutTakeBack(ctx), u, func(ctx context.Context, s *ibkr.Session, _ Conn) error {
			_, err := s.Accounts(ctx)
			return err
		})
	}()
	flight := func() *flight {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			tn := c.tenant(u)
			tn.mu.Lock()
			f := tn.flight
			tn.mu.Unlock()
			if f != nil {
				return f
			}
			if time.Now().After(deadline) {
				t.Fatal("the look started no flight")
			}
			time.Sleep(time.Millisecond)
		}
	}
	f := flight()
	if f.takeBack.Load() {
		t.Fatal("the look's flight may take the session back")
	}
	bought := make(chan error, 1)
	go func() {
		_, err := buy()
		bought <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); !f.takeBack.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the order did not join the flight")
		}
	}
	for range cap(c.flights) {
		<-c.flights
	}
	if err := <-bought; err != nil {
		t.Errorf("the order: %v", err)
	}
	if err := <-looked; err != nil {
		t.Errorf("the look: %v", err)
	}
	if got := e.sim.sim.Load().Stats()[in.ConsumerKey].OtherLoginsSignedOut - before; got != 1 {
		t.Errorf("%d take-overs, want 1", got)
	}
}

// TestRestartedServerKeepsTheUsersSetting: after a restart the cache knows
// nothing of a competing login, and the first order makes a new live
// session token, which tells nothing of who holds the brokerage session
// either. The order opens the session only if it is free, so that the
// user's setting still decides: "wait" sends nothing and signs nobody out,
// "take_back" takes the session back (audited).
func TestRestartedServerKeepsTheUsersSetting(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	u, in := e.connected("DU1234567")
	order := e.aaplOrder(t, ctx, u)
	signedOut := func() int64 { return e.sim.sim.Load().Stats()[in.ConsumerKey].OtherLoginsSignedOut }
	// Another login takes the session while the server is down.
	e.otherLogin(t, ctx, e.svc.Cache(), u)
	restarted := func() *Service {
		t.Helper()
		svc, err := New(Config{Pool: e.pool, Ring: e.ring, IBKR: ibkr.Options{BaseURL: e.sim.baseURL()}})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}

	if err := e.svc.SetSessionPreference(ctx, Actor{UserID: u}, u, CompetingWait); err != nil {
		t.Fatal(err)
	}
	orders := len(e.sim.sim.Load().Orders())
	order.COID = "restart-wait"
	if _, err := restarted().Orders().PlaceOrder(ctx, u, order); errs.CodeOf(err) != errs.BrokerSessionCompeting {
		t.Errorf("order with wait after a restart: %v, want broker_session_competing", err)
	}
	if n := signedOut(); n != 0 {
		t.Errorf("the order with wait signed %d other logins out, want none", n)
	}
	if got := len(e.sim.sim.Load().Orders()); got != orders {
		t.Errorf("orders at IBKR went from %d to %d while waiting", orders, got)
	}

	if err := e.svc.SetSessionPreference(ctx, Actor{UserID: u}, u, CompetingTakeBack); err != nil {
		t.Fatal(err)
	}
	order.COID = "restart-take"
	if _, err := restarted().Orders().PlaceOrder(ctx, u, order); err != nil {
		t.Fatalf("order with take_back after a restart: %v", err)
	}
	if n := signedOut(); n != 1 {
		t.Errorf("the order with take_back signed %d other logins out, want 1", n)
	}
	e.wantCount(t, 1, "take-backs audited", `SELECT count(*) FROM audit_events WHERE user_id = $1 AND action = 'broker.session_taken_back'`, u)
}

// TestLookJoiningAWaitingOrderStillShowsThePortfolio: with "wait" set, an
// order finds another login holding the session and leaves it; a look at
// the positions that waited on the same flight is still served on the
// live session token, as every later look is, rather than refused with
// the order's "wait" error.
func TestLookJoiningAWaitingOrderStillShowsThePortfolio(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	u, in, c := e.warmSession(t, ctx)
	if err := e.svc.SetSessionPreference(ctx, Actor{UserID: u}, u, CompetingWait); err != nil {
		t.Fatal(err)
	}
	// Every flight waits for a token until both callers wait on it.
	for range cap(c.flights) {
		c.flights <- struct{}{}
	}
	e.sim.fault(map[string]any{"kind": "competing", "path": "/iserver/accounts", "count": 1})
	ordered := make(chan error, 1)
	go func() {
		ordered <- c.Do(ctx, u, func(ctx context.Context, s *ibkr.Session, _ Conn) error {
			_, err := s.Accounts(ctx)
			return err
		})
	}()
	waiting := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); waitingOnFlight() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("fewer than %d callers wait for the flight", n)
			}
		}
	}
	waiting(1)
	looked := make(chan error, 1)
	go func() {
		_, err := e.svc.Orders().Positions(trading.WithoutTakeBack(ctx), u)
		looked <- err
	}()
	waiting(2)
	for range cap(c.flights) {
		<-c.flights
	}
	if err := <-ordered; errs.CodeOf(err) != errs.BrokerSessionCompeting {
		t.Errorf("the call with wait: %v, want broker_session_competing", err)
	}
	if err := <-looked; err != nil {
		t.Errorf("the look that waited on its flight: %v, want the positions", err)
	}
	if n := e.sim.sim.Load().Stats()[in.ConsumerKey].OtherLoginsSignedOut; n != 0 {
		t.Errorf("%d other logins signed out, want none", n)
	}
}

// waitingOnFlight returns how many goroutines wait in Cache.acquire for a
// flight to end: blocked in its select, not merely passing through it (a
// caller served by a ready session is in acquire too, for a moment).
func waitingOnFlight() int {
	buf := make([]byte, 8<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		header, frames, _ := strings.Cut(g, "\n")
		if strings.Contains(header, "[select") && strings.Contains(frames, "broker.(*Cache).acquire(") {
			n++
		}
	}
	return n
}

// otherLogin has another login (Client Portal, TWS) take u's brokerage
// session, and the keep-alive's tickle see it.
func (e *env) otherLogin(t *testing.T, ctx context.Context, c *Cache, u string) {
	t.Helper()
	e.sim.fault(map[string]any{"kind": "competing", "path": "/tickle", "count": 1})
	if _, competing := c.tickle(ctx, c.tenant(u)); !competing {
		t.Fatal("the tickle did not see the other login")
	}
}
