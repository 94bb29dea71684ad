package trading_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/clocktest"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

// clockWorld is a world whose service runs on a settable clock, so that
// minutes of reconciliation pass in a few real seconds: one pass per
// simulated second.
func clockWorld(t *testing.T) (*world, *clocktest.Clock) {
	t.Helper()
	clock := clocktest.New(time.Now())
	w := newWorld(t, fastSim(), func(c *trading.Config, _ *tradetest.SimBrokerOptions) {
		c.Now = clock.Now
		c.ReconcileInterval = time.Second
		c.ReconcileBackoffMax = 8 * time.Second
		c.OutcomeUnknownAfter = 30 * time.Second
	})
	return w, clock
}

// pass advances the clock by a second and runs one reconciliation pass.
func (w *world) pass(t *testing.T, clock *clocktest.Clock) {
	t.Helper()
	clock.Advance(time.Second)
	if _, err := w.svc.Reconcile(context.Background()); err != nil {
		t.Logf("reconcile: %v", err)
	}
}

// statuses lists a confirmation's status history.
func statuses(c trading.Confirmation) []trading.Status {
	var out []trading.Status
	for _, e := range c.Events {
		out = append(out, e.Status)
	}
	return out
}

func (w *world) confirmation(t *testing.T, user, id string) trading.Confirmation {
	t.Helper()
	c, err := w.svc.Confirmation(context.Background(), user, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAcceptedOrderIsNeverFailed is issue 23 A: IBKR takes an order but its
// answer is lost, then IBKR's orders list is empty (its nightly reset) for
// more than a minute. The confirmation is never failed; after the bound it
// tells the user the outcome is unknown, and once the order fills it is
// found among the executions and settles filled.
func TestAcceptedOrderIsNeverFailed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, clock := clockWorld(t)
	u := w.subscriber(t, trading.SizeShares, "7")
	w.env.Fault(t, ibkrsim.Fault{Kind: ibkrsim.FaultTimeoutAfterAccept, Path: "/iserver/account/*/orders", Count: 1})
	c, _, err := w.svc.Confirm(ctx, u, w.signal(t, nil).ID, "k", "BUY")
	if err != nil || c.Status != trading.StatusUnknown {
		t.Fatalf("confirm = %s, %v; want unknown (the answer was lost)", c.Status, err)
	}
	if o := w.env.Orders(t); len(o) != 1 || o[0].COID != c.ID {
		t.Fatalf("simulator orders = %+v, want the confirmation's", o)
	}
	w.env.Fault(t, ibkrsim.Fault{Kind: ibkrsim.FaultEmptyOrders}) // until cleared

	for range 60 {
		w.pass(t, clock)
		if got := w.confirmation(t, u, c.ID); got.Status != trading.StatusUnknown {
			t.Fatalf("during the empty orders list: %s %+v, want unknown", got.Status, got.Error)
		}
	}
	got := w.confirmation(t, u, c.ID)
	if got.Error == nil || got.Error.Message != trading.OutcomeUnknownMessage || !strings.HasPrefix(got.Error.Message, "outcome unknown — check your IBKR account") {
		t.Errorf("after 60 s: error %+v, want the outcome-unknown message", got.Error)
	}

	w.env.Auction(t, true) // the order fills; the orders list is still empty
	for i := 0; i < 30 && got.Status != trading.StatusFilled; i++ {
		w.pass(t, clock)
		got = w.confirmation(t, u, c.ID)
	}
	open, _ := w.env.Sim.Security("AAPL")
	want := fillView{Status: trading.StatusFilled, Filled: "7", Avg: ptr(trimFloat(open.OpenPrice)), Final: true}
	if diff := cmp.Diff(want, w.view(t, got)); diff != "" {
		t.Errorf("after the fill (-want +got):\n%s", diff)
	}
	if got.Error != nil || got.BrokerOrderID == nil || *got.BrokerOrderID != w.env.Orders(t)[0].OrderID {
		t.Errorf("settled row: error %+v, order id %v; want no error and the simulator's order id", got.Error, got.BrokerOrderID)
	}
	for _, s := range statuses(got) {
		if s == trading.StatusFailed {
			t.Errorf("history %v contains failed", statuses(got))
		}
	}
}

// TestOneMissingOrderDoesNotHoldUpTheOthers is issue 23 B: IBKR answers
// 404 for one row's order id (orders lost in a restart); the user's other
// rows settle in the same pass, the 404 row backs off on its own and ends
// up "outcome unknown" (never failed), and a 404 row whose order did fill
// settles from the executions.
func TestOneMissingOrderDoesNotHoldUpTheOthers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, clock := clockWorld(t)
	u := w.subscriber(t, trading.SizeShares, "2")
	var ids []string
	for i := range 3 {
		c, _, err := w.svc.Confirm(ctx, u, w.signal(t, nil).ID, string(rune('a'+i)), "BUY")
		if err != nil || c.Status != trading.StatusSubmitted {
			t.Fatalf("confirm %d = %s, %v", i, c.Status, err)
		}
		ids = append(ids, c.ID)
	}
	// A row whose order IBKR lost in a restart: its id answers 404 and its
	// cOID is nowhere. It is due first.
	lost := "22222222-2222-4222-8222-222222222222"
	if _, err := w.pool.Exec(ctx, `
		INSERT INTO confirmations (id, user_id, signal_id, side, idempotency_key, request_hash, ticker, quantity, order_type, tif, ref_price,
			mode, account_id_masked, status, broker_order_id, broker_status, created_at, updated_at, next_check_at)
		VALUES ($1, $2, $3, 'BUY', 'lost', '\x00', 'AAPL', 2, 'MKT', 'OPG', 187.25, 'paper', 'DU•••1', 'submitted', '999999', 'PreSubmitted',
			$4::timestamptz, $4::timestamptz, $4::timestamptz - interval '1 hour')`, lost, u, w.signal(t, nil).ID, clock.Now()); err != nil {
		t.Fatal(err)
	}
	// And one of the real orders answers 404 too, while the orders list is
	// empty: only its executions can show what became of it.
	var forgotten string
	if err := w.pool.QueryRow(ctx, `SELECT broker_order_id FROM confirmations WHERE id = $1`, ids[0]).Scan(&forgotten); err != nil {
		t.Fatal(err)
	}
	w.env.Fault(t, ibkrsim.Fault{Kind: ibkrsim.FaultStatus, Path: "/iserver/account/order/status/" + forgotten, Value: []byte("404")})
	w.env.Fault(t, ibkrsim.Fault{Kind: ibkrsim.FaultEmptyOrders})
	w.env.Auction(t, true)
	if _, err := w.pool.Exec(ctx, `UPDATE confirmations SET next_check_at = $1 WHERE id = ANY($2)`, clock.Now(), ids); err != nil {
		t.Fatal(err)
	}

	w.pass(t, clock) // one pass settles every row that can be settled
	for _, id := range ids {
		if got := w.confirmation(t, u, id); got.Status != trading.StatusFilled {
			t.Errorf("after one pass: %s is %s, want filled", id, got.Status)
		}
	}
	got := w.confirmation(t, u, lost)
	if got.Status != trading.StatusUnknown || got.Error == nil || !strings.Contains(got.Error.Message, "looked up") {
		t.Errorf("the lost row after one pass: %s %+v, want unknown and being looked up", got.Status, got.Error)
	}

	// The lost row backs off on its own: its lookups drift apart.
	var checks []time.Time
	for range 40 {
		var next time.Time
		if err := w.pool.QueryRow(ctx, `SELECT next_check_at FROM confirmations WHERE id = $1`, lost).Scan(&next); err != nil {
			t.Fatal(err)
		}
		if len(checks) == 0 || !next.Equal(checks[len(checks)-1]) {
			checks = append(checks, next)
		}
		w.pass(t, clock)
	}
	var gaps []time.Duration
	for i := 1; i < len(checks); i++ {
		gaps = append(gaps, checks[i].Sub(checks[i-1]).Round(time.Second))
	}
	if len(gaps) < 3 || gaps[0] >= gaps[2] || gaps[len(gaps)-1] != 8*time.Second {
		t.Errorf("gaps between the lost row's lookups = %v, want them to grow to the 8 s maximum", gaps)
	}
	got = w.confirmation(t, u, lost)
	if got.Status != trading.StatusUnknown || got.Error == nil || got.Error.Message != trading.OutcomeUnknownMessage {
		t.Errorf("the lost row after 40 s: %s %+v, want unknown with the outcome-unknown message", got.Status, got.Error)
	}
	for _, s := range statuses(got) {
		if s == trading.StatusFailed {
			t.Errorf("the lost row's history %v contains failed", statuses(got))
		}
	}
	if got := w.confirmation(t, u, ids[0]); !strings.Contains(got.Events[len(got.Events)-1].Message, "executions") {
		t.Errorf("the forgotten order settled by %q, want from the executions", got.Events[len(got.Events)-1].Message)
	}
}
