package trading_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

// track runs reconciliation until confirmation id is in status want.
func (w *world) track(t *testing.T, user, id string, want trading.Status) trading.Confirmation {
	t.Helper()
	ctx := context.Background()
	var c trading.Confirmation
	for i := 0; i < 200; i++ {
		// Make the row due now rather than waiting for its next check.
		if _, err := w.pool.Exec(ctx, `UPDATE confirmations SET next_check_at = now() WHERE id = $1 AND next_check_at IS NOT NULL`, id); err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.Reconcile(ctx); err != nil {
			t.Logf("reconcile: %v", err)
		}
		var err error
		if c, err = w.svc.Confirmation(ctx, user, id); err != nil {
			t.Fatal(err)
		}
		if c.Status == want {
			return c
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("confirmation %s stayed %s, want %s", id, c.Status, want)
	return c
}

type fillView struct {
	Status trading.Status
	Filled string
	Avg    *string
	Final  bool
}

func (w *world) view(t *testing.T, c trading.Confirmation) fillView {
	t.Helper()
	var open bool
	if err := w.pool.QueryRow(context.Background(), `SELECT next_check_at IS NOT NULL FROM confirmations WHERE id = $1`, c.ID).Scan(&open); err != nil {
		t.Fatal(err)
	}
	return fillView{c.Status, c.FilledQuantity, c.AvgFillPrice, !open}
}

func TestReconciliationTracksFillsAndExitSellsWhatFilled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sim := fastSim()
	sim.PartialFillFraction = 0.5
	w := newWorld(t, sim, nil)
	u := w.subscriber(t, trading.SizeShares, "9")
	entry := w.signal(t, nil)
	c, _, err := w.svc.Confirm(ctx, u, entry.ID, "buy", "BUY")
	if err != nil {
		t.Fatal(err)
	}
	w.track(t, u, c.ID, trading.StatusSubmitted)
	w.env.Auction(t, true) // fills half (4 of 9), the rest of the OPG order is cancelled
	got := w.track(t, u, c.ID, trading.StatusPartiallyFilled)
	open, _ := w.env.Sim.Security("AAPL")
	want := fillView{Status: trading.StatusPartiallyFilled, Filled: "4", Avg: ptr(trimFloat(open.OpenPrice)), Final: true}
	if diff := cmp.Diff(want, w.view(t, got)); diff != "" {
		t.Errorf("after the auction (-want +got):\n%s", diff)
	}

	exit := w.signal(t, func(n *trading.NewSignal) { n.Kind = "exit"; n.EntryMode = trading.SignalClose })
	p, err := w.svc.Preview(ctx, u, exit.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Side != "SELL" || p.Quantity != 4 || p.OrderType != "MOC" || p.TIF != "DAY" {
		t.Errorf("exit preview = %+v, want SELL 4 MOC DAY", p)
	}
	sell, _, err := w.svc.Confirm(ctx, u, exit.ID, "sell", "SELL")
	if err != nil {
		t.Fatal(err)
	}
	orders := w.env.Orders(t)
	if len(orders) != 2 || orders[1].COID != sell.ID || orders[1].Side != "SELL" || orders[1].Quantity != 4 {
		t.Errorf("orders = %+v, want the SELL 4 as second", orders)
	}

	// A second exit of the same position finds nothing left while the
	// first one may still sell, and the shares again once it is cancelled.
	exit2 := w.signal(t, func(n *trading.NewSignal) { n.Kind = "exit"; n.EntryMode = trading.SignalClose })
	if _, err := w.svc.Preview(ctx, u, exit2.ID); err == nil || !strings.Contains(err.Error(), "nothing left to sell") {
		t.Errorf("second exit while the first is working: err = %v, want nothing left to sell", err)
	}
	if _, err := w.svc.Cancel(ctx, u, sell.ID); err != nil {
		t.Fatal(err)
	}
	w.track(t, u, sell.ID, trading.StatusCancelled)
	if p, err := w.svc.Preview(ctx, u, exit2.ID); err != nil || p.Quantity != 4 {
		t.Errorf("second exit after the first was cancelled: %+v, %v; want SELL 4", p, err)
	}
}

// confirmEntry publishes a strategy I entry in AAPL and confirms it for u
// under the Idempotency-Key key.
func (w *world) confirmEntry(t *testing.T, u, key string) (trading.Signal, trading.Confirmation) {
	t.Helper()
	g := w.signal(t, nil)
	c, _, err := w.svc.Confirm(context.Background(), u, g.ID, key, "BUY")
	if err != nil {
		t.Fatal(err)
	}
	return g, c
}

// filledEntry confirms a strategy I entry in AAPL for u and fills it at
// the opening auction.
func (w *world) filledEntry(t *testing.T, u string) {
	t.Helper()
	_, c := w.confirmEntry(t, u, "buy")
	w.track(t, u, c.ID, trading.StatusSubmitted)
	w.env.Auction(t, true)
	w.track(t, u, c.ID, trading.StatusFilled)
}

// wantOneSell fails the test unless the simulator has seen exactly one
// SELL order.
func (w *world) wantOneSell(t *testing.T) {
	t.Helper()
	n := 0
	for _, o := range w.env.Orders(t) {
		if o.Side == "SELL" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d SELL orders at the simulator, want 1", n)
	}
}

// TestTwoExitsAtOnceSellOnce confirms two exits of one position at
// once: one sells the shares, the other fails without reaching IBKR.
func TestTwoExitsAtOnceSellOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, u := newTrader(t, "5")
	w.filledEntry(t, u)
	exits := []string{
		w.signal(t, func(n *trading.NewSignal) { n.Kind = "exit"; n.EntryMode = trading.SignalClose }).ID,
		w.signal(t, func(n *trading.NewSignal) { n.Kind = "exit"; n.EntryMode = trading.SignalClose }).ID,
	}
	var wg sync.WaitGroup
	results := make([]trading.Confirmation, len(exits))
	errors := make([]error, len(exits))
	for i, id := range exits {
		wg.Go(func() { results[i], _, errors[i] = w.svc.Confirm(ctx, u, id, fmt.Sprint("sell", i), "SELL") })
	}
	wg.Wait()
	// The loser is refused at its preview or, when both previews came
	// first, fails at the re-check under the account's lock.
	submitted := 0
	for i, r := range results {
		switch {
		case r.Status == trading.StatusSubmitted && errors[i] == nil:
			submitted++
		case errors[i] == nil || !strings.Contains(errors[i].Error(), "left to sell"):
			t.Errorf("exit %d: %s, %v; want submitted, or an error saying what is left to sell", i, r.Status, errors[i])
		}
	}
	if submitted != 1 {
		t.Errorf("%d exits submitted, want 1", submitted)
	}
	w.wantOneSell(t)
}

// TestStaleExitPreviewIsRechecked makes deterministic the race that
// TestTwoExitsAtOnceSellOnce leaves to the scheduler: both exits are
// previewed (5 shares each) before either is placed. The second is placed
// with its stale preview, and the re-check under the account's lock must
// refuse it before anything reaches IBKR.
func TestStaleExitPreviewIsRechecked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, u := newTrader(t, "5")
	w.filledEntry(t, u)
	exit := func(*testing.T) string {
		return w.signal(t, func(n *trading.NewSignal) { n.Kind = "exit"; n.EntryMode = trading.SignalClose }).ID
	}
	first, second := exit(t), exit(t)
	stale, err := w.svc.Preview(ctx, u, second)
	if err != nil || stale.Quantity != 5 {
		t.Fatalf("preview of the second exit = %d shares, %v; want 5", stale.Quantity, err)
	}
	if c, _, err := w.svc.Confirm(ctx, u, first, "sell1", "SELL"); err != nil || c.Status != trading.StatusSubmitted || c.Quantity != 5 {
		t.Fatalf("first exit = %s of %d, %v; want 5 submitted", c.Status, c.Quantity, err)
	}
	late, err := w.svc.ConfirmPreviewed(ctx, u, "sell2", stale)
	if err == nil || !strings.Contains(err.Error(), "already sold or being sold") || late.Status != trading.StatusFailed {
		t.Errorf("second exit with the stale preview = %s, %v; want failed: the shares are already being sold", late.Status, err)
	}
	w.wantOneSell(t)
}

func TestCancel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, u := newTrader(t, "3")
	g, c := w.confirmEntry(t, u, "k")
	if _, err := w.svc.Cancel(ctx, u, c.ID); err != nil {
		t.Fatal(err)
	}
	got := w.track(t, u, c.ID, trading.StatusCancelled)
	if diff := cmp.Diff(fillView{Status: trading.StatusCancelled, Filled: "0", Final: true}, w.view(t, got)); diff != "" {
		t.Errorf("after cancel (-want +got):\n%s", diff)
	}
	if o := w.env.Orders(t); len(o) != 1 || o[0].Status != "Cancelled" {
		t.Errorf("orders = %+v, want one cancelled", o)
	}
	if _, err := w.svc.Cancel(ctx, u, c.ID); err == nil {
		t.Error("cancelling a cancelled order succeeded, want a conflict")
	}
	// A cancelled confirmation frees the (user, signal, side): confirming
	// again with a new key places a new order.
	again, replay, err := w.svc.Confirm(ctx, u, g.ID, "k2", "BUY")
	if err != nil || replay || again.ID == c.ID {
		t.Errorf("re-confirm after cancel = (%s, %v, %v), want a new confirmation", again.ID, replay, err)
	}
}

// TestAbandonedPendingIsSettled: pending rows whose request died are looked
// up. One whose order reached IBKR becomes submitted. One without an order
// at IBKR is never failed on that absence — nothing proves that no byte left
// — but becomes unknown and, after the bound, tells the user the outcome is
// unknown. Only one this process knows it never sent becomes failed.
func TestAbandonedPendingIsSettled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, clock := clockWorld(t)
	u := w.subscriber(t, trading.SizeShares, "3")
	g1, g2, g3 := w.signal(t, nil), w.signal(t, nil), w.signal(t, nil)
	placed, _, err := w.svc.Confirm(ctx, u, g1.ID, "a", "BUY")
	if err != nil {
		t.Fatal(err)
	}
	// Pretend the requests died before recording anything: the rows are as
	// insertPending left them, due when their grace period ended.
	if _, err := w.pool.Exec(ctx, `UPDATE confirmations SET status = 'pending', broker_order_id = NULL, broker_status = NULL, next_check_at = $1::timestamptz - interval '1 second', updated_at = $1::timestamptz - interval '1 hour'`, clock.Now()); err != nil {
		t.Fatal(err)
	}
	const neverSeen, unsent = "11111111-1111-4111-8111-111111111111", "33333333-3333-4333-8333-333333333333"
	for _, r := range []struct{ id, signal string }{{neverSeen, g2.ID}, {unsent, g3.ID}} {
		if _, err := w.pool.Exec(ctx, `
			INSERT INTO confirmations (id, user_id, signal_id, side, idempotency_key, request_hash, ticker, quantity, order_type, tif, ref_price, mode, account_id_masked, status, created_at, updated_at, next_check_at)
			VALUES ($1, $2, $3, 'BUY', $5, '\x00', 'AAPL', 3, 'MKT', 'OPG', 187.25, 'paper', 'DU•••1', 'pending', $4::timestamptz, $4::timestamptz - interval '1 hour', $4::timestamptz - interval '1 second')`,
			r.id, u, r.signal, clock.Now(), r.id); err != nil {
			t.Fatal(err)
		}
	}
	w.svc.KeepUnsent(unsent)
	for range 40 {
		w.pass(t, clock)
	}
	a := w.confirmation(t, u, placed.ID)
	b := w.confirmation(t, u, neverSeen)
	c := w.confirmation(t, u, unsent)
	if a.Status != trading.StatusSubmitted {
		t.Errorf("the placed one is %s, want submitted", a.Status)
	}
	if b.Status != trading.StatusUnknown || b.Error == nil || b.Error.Message != trading.OutcomeUnknownMessage {
		t.Errorf("the one IBKR does not show is %s %+v, want unknown with the outcome-unknown message", b.Status, b.Error)
	}
	if diff := cmp.Diff([]trading.Status{trading.StatusUnknown, trading.StatusUnknown}, statuses(b)); diff != "" {
		t.Errorf("its history (-want +got):\n%s", diff)
	}
	if c.Status != trading.StatusFailed || c.Error == nil || !strings.Contains(c.Error.Message, "nothing was sent") {
		t.Errorf("the one known unsent is %s %+v, want failed: nothing was sent", c.Status, c.Error)
	}
}

// TestTwoReconcilersNeverShareARow runs two services (two instances) on one
// database; with FOR UPDATE SKIP LOCKED and the lease each due row is
// looked at by one of them, so every row's history has one entry per change.
func TestTwoReconcilersNeverShareARow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, fastSim(), nil)
	second, err := trading.New(trading.Config{Pool: w.pool, Broker: w.env.Broker, ReconcileInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	u := w.subscriber(t, trading.SizeShares, "1")
	var ids []string
	for i := 0; i < 6; i++ {
		g := w.signal(t, nil)
		c, _, err := w.svc.Confirm(ctx, u, g.ID, g.ID, "BUY")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	w.env.Auction(t, true)
	if _, err := w.pool.Exec(ctx, `UPDATE confirmations SET next_check_at = now()`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var n1, n2 int
	wg.Add(2)
	go func() { defer wg.Done(); n1, _ = w.svc.Reconcile(ctx) }()
	go func() { defer wg.Done(); n2, _ = second.Reconcile(ctx) }()
	wg.Wait()
	if n1+n2 != len(ids) {
		t.Errorf("rows looked at: %d + %d, want %d in total", n1, n2, len(ids))
	}
	for _, id := range ids {
		c, err := w.svc.Confirmation(ctx, u, id)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range c.Events {
			got = append(got, string(e.Status))
		}
		if diff := cmp.Diff([]string{"pending", "submitted", "filled"}, got); diff != "" {
			t.Errorf("history of %s (-want +got):\n%s", id, diff)
		}
	}
}

func TestReconcilerStopsWithItsContext(t *testing.T) {
	t.Parallel()
	w := newWorld(t, fastSim(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.svc.RunReconciler(ctx); close(done) }()
	cancel()
	<-done
}

func TestStatusHistoryIsAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, u := newTrader(t, "1")
	w.confirmEntry(t, u, "k")
	for _, q := range []string{`UPDATE confirmation_events SET status = 'filled'`, `DELETE FROM confirmation_events`} {
		if _, err := w.pool.Exec(ctx, q); err == nil {
			t.Errorf("%s succeeded, want the append-only trigger to refuse it", q)
		}
	}
}

// TestReferencedRowsAreNeverDeleted: confirmations refer to their user and
// signal without foreign keys (see migration 000005), so the rows they refer
// to must never go away.
func TestReferencedRowsAreNeverDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, u := newTrader(t, "1")
	g, c := w.confirmEntry(t, u, "k")
	// The server's role may not delete signals or confirmations at all;
	// the triggers refuse it even to the owner.
	owner := pgtest.OwnerPool(t, w.pool)
	for _, q := range []struct {
		pool    *pgxpool.Pool
		sql, id string
		state   string
	}{
		{w.pool, `DELETE FROM signals WHERE id = $1`, g.ID, "42501"},
		{w.pool, `DELETE FROM confirmations WHERE id = $1`, c.ID, "42501"},
		{owner, `DELETE FROM signals WHERE id = $1`, g.ID, "23001"},
		{owner, `DELETE FROM confirmations WHERE id = $1`, c.ID, "23001"},
		{w.pool, `DELETE FROM users WHERE id = $1`, u, "23001"},
	} {
		if _, err := q.pool.Exec(ctx, q.sql, q.id); err == nil || !strings.Contains(err.Error(), "SQLSTATE "+q.state) {
			t.Errorf("%s: err = %v, want SQLSTATE %s", q.sql, err, q.state)
		}
	}
	// A user who never confirmed anything can still be deleted.
	other := w.subscriber(t, trading.SizeShares, "1")
	if tag, err := w.pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, other); err != nil || tag.RowsAffected() != 1 {
		t.Errorf("deleting a user without confirmations: %v, %v rows; want 1 row deleted", err, tag.RowsAffected())
	}
}

// TestReconcilerLeavesOtherReplicasTenants: with many replicas, a pass
// claims no row of a user whose IBKR session another live replica owns;
// the owner's pass does, and so does anyone's once the lease is gone.
func TestReconcilerLeavesOtherReplicasTenants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, fastSim(), func(c *trading.Config, _ *tradetest.SimBrokerOptions) { c.Replica = "b" })
	owner, err := trading.New(trading.Config{Pool: w.pool, Broker: w.env.Broker, ReconcileInterval: 20 * time.Millisecond, Replica: "a"})
	if err != nil {
		t.Fatal(err)
	}
	u := w.subscriber(t, trading.SizeShares, "1")
	w.confirmEntry(t, u, "k")
	due := func() {
		t.Helper()
		if _, err := w.pool.Exec(ctx, `UPDATE confirmations SET next_check_at = now() - interval '1 second'`); err != nil {
			t.Fatal(err)
		}
	}
	lease := func(expires string) {
		t.Helper()
		if _, err := w.pool.Exec(ctx, `
			INSERT INTO broker_session_leases (user_id, mode, owner, owner_url, expires_at) VALUES ($1, 'paper', 'a', 'http://a', now() + $2::interval)
			ON CONFLICT (user_id, mode) DO UPDATE SET expires_at = EXCLUDED.expires_at`, u, expires); err != nil {
			t.Fatal(err)
		}
	}
	due()
	lease("1 minute")
	if n, err := w.svc.Reconcile(ctx); err != nil || n != 0 {
		t.Fatalf("replica b claimed %d rows of a's tenant (%v), want 0", n, err)
	}
	if n, err := owner.Reconcile(ctx); err != nil || n != 1 {
		t.Fatalf("the owner claimed %d rows (%v), want 1", n, err)
	}
	due()
	lease("-1 second") // a died
	if n, err := w.svc.Reconcile(ctx); err != nil || n != 1 {
		t.Fatalf("replica b claimed %d rows after a's lease expired (%v), want 1", n, err)
	}
}

// takeBacks records whether each order-status read and each order was
// allowed to take the user's IBKR session back from another login
// (trading.TakesBack).
type takeBacks struct {
	trading.Broker
	mu            sync.Mutex
	status, place []bool
}

func (b *takeBacks) OrderStatus(ctx context.Context, userID, orderID string) (trading.OrderState, error) {
	b.mu.Lock()
	b.status = append(b.status, trading.TakesBack(ctx))
	b.mu.Unlock()
	return b.Broker.OrderStatus(ctx, userID, orderID)
}

func (b *takeBacks) PlaceOrder(ctx context.Context, userID string, o trading.Order) (trading.OrderState, error) {
	b.mu.Lock()
	b.place = append(b.place, trading.TakesBack(ctx))
	b.mu.Unlock()
	return b.Broker.PlaceOrder(ctx, userID, o)
}

// Reconciliation never takes the user's IBKR session back from another
// login (Client Portal, TWS): nobody waits on it, and it looks again
// later. The order does (broker's TestWorkWithoutTakeBackLeavesTheOtherLogin
// shows what the mark does).
func TestReconcilerLeavesTheOtherLogin(t *testing.T) {
	t.Parallel()
	w := newWorld(t, fastSim(), nil)
	rec := &takeBacks{Broker: w.env.Broker}
	svc, err := trading.New(trading.Config{Pool: w.pool, Broker: rec, ReconcileInterval: 20 * time.Millisecond, PendingGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	u := w.subscriber(t, trading.SizeShares, "1")
	g := w.signal(t, nil)
	if _, _, err := svc.Confirm(context.Background(), u, g.ID, "k", "BUY"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.RunReconciler(ctx); close(done) }()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		rec.mu.Lock()
		n := len(rec.status)
		rec.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("reconciliation read no order status")
		}
	}
	cancel()
	<-done
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if slices.Contains(rec.status, true) {
		t.Errorf("order status read with take-back %v, want never", rec.status)
	}
	if len(rec.place) != 1 || !rec.place[0] {
		t.Errorf("order placed with take-back %v, want [true]", rec.place)
	}
}
