package ledger_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ledger"
	"github.com/ordertune/ordertune/internal/trading"
)

// reconcile runs reconciliation passes until the confirmation reaches
// status, or fails the test.
func (w *world) reconcile(t *testing.T, user, id string, status trading.Status) trading.Confirmation {
	t.Helper()
	for i := 0; i < 200; i++ {
		time.Sleep(25 * time.Millisecond)
		if _, err := w.trade.Reconcile(context.Background()); err != nil {
			t.Logf("reconcile: %v", err)
		}
		if c := w.confirmation(t, user, id); c.Status == status {
			return c
		}
	}
	t.Fatalf("confirmation %s never became %s", id, status)
	return trading.Confirmation{}
}

func (w *world) pnl(t *testing.T, user string, f ledger.PnLFilter) []ledger.PnLRow {
	t.Helper()
	rows, err := w.ledger.PnL(context.Background(), user, f)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func today() string {
	return time.Now().In(mustNY()).Format(time.DateOnly)
}

func mustNY() *time.Location {
	l, err := time.LoadLocation("America/New_York")
	if err != nil {
		panic(err)
	}
	return l
}

// An entry filled at the open and its exit filled at the close realize
// (exit − entry) × quantity − both commissions, to the cent; the entry is
// closed, the position gone, and importing again changes nothing.
func TestRoundTrip(t *testing.T) {
	w := newWorld(t, fastSim())
	ctx := context.Background()
	user := w.subscriber(t, "", "300")

	entry := w.confirm(t, user, w.signal(t, "AAPL", "I", "entry"))
	w.auction(t, true, map[string]float64{"AAPL": 190.50})
	w.reconcile(t, user, entry.ID, trading.StatusFilled)

	pos, err := w.ledger.Positions(ctx, user, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(pos) != 1 || pos[0].Ticker != "AAPL" || pos[0].Quantity != "300" || pos[0].AvgCost != "190.50" || pos[0].Exit != nil {
		t.Fatalf("positions after the entry = %+v", pos)
	}

	exit := w.confirm(t, user, w.signal(t, "AAPL", "I", "exit"))
	if pos, err = w.ledger.Positions(ctx, user, ""); err != nil {
		t.Fatal(err)
	}
	if len(pos) != 1 || pos[0].Exit == nil || pos[0].Exit.ConfirmationID != exit.ID || pos[0].Exit.Quantity != 300 {
		t.Fatalf("positions after confirming the exit = %+v", pos)
	}
	w.auction(t, false, map[string]float64{"AAPL": 195.25})

	// No reconciliation after the close: the import records the exit's fill.
	res := w.importNow(t, user)
	if res.Stored != 2 || res.Read != 2 || res.Recovered != 1 {
		t.Errorf("import = %+v, want 2 read and stored, 1 recovered", res)
	}
	// 300 shares: USD 0.005 a share = 1.50 per side.
	want := []ledger.PnLRow{{Key: today(), RealizedPnL: "1422.00", Commissions: "3.00", Trades: 1}} // 4.75 × 300 − 1.50 − 1.50
	if diff := cmp.Diff(want, w.pnl(t, user, ledger.PnLFilter{})); diff != "" {
		t.Errorf("P&L by day (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]ledger.PnLRow{{Key: "I", RealizedPnL: "1422.00", Commissions: "3.00", Trades: 1}},
		w.pnl(t, user, ledger.PnLFilter{Group: ledger.ByStrategy})); diff != "" {
		t.Errorf("P&L by strategy (-want +got):\n%s", diff)
	}

	e, x := w.confirmation(t, user, entry.ID), w.confirmation(t, user, exit.ID)
	if !e.Closed || e.Commission == nil || *e.Commission != "1.50" {
		t.Errorf("entry closed = %v, commission = %v; want closed, 1.50", e.Closed, e.Commission)
	}
	if x.Status != trading.StatusFilled || x.AvgFillPrice == nil || *x.AvgFillPrice != "195.25" || x.Closed || *x.Commission != "1.50" {
		t.Errorf("exit = %s at %v, closed %v, commission %v; want filled at 195.25, not closed, 1.50", x.Status, x.AvgFillPrice, x.Closed, x.Commission)
	}
	if pos, err = w.ledger.Positions(ctx, user, ""); err != nil || len(pos) != 0 {
		t.Errorf("positions after the round trip = %+v, %v; want none", pos, err)
	}

	// Again: the same executions are stored once.
	if res := w.importNow(t, user); res.Stored != 0 || res.Recovered != 0 {
		t.Errorf("second import = %+v, want nothing new", res)
	}
	var n int
	if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM executions WHERE user_id = $1`, user).Scan(&n); err != nil || n != 2 {
		t.Errorf("%d executions stored (%v), want 2", n, err)
	}
	if diff := cmp.Diff(want, w.pnl(t, user, ledger.PnLFilter{})); diff != "" {
		t.Errorf("P&L after the second import (-want +got):\n%s", diff)
	}

	trades, next, err := w.ledger.Trades(ctx, user, ledger.TradeFilter{Ticker: "aapl"})
	if err != nil || next != "" || len(trades) != 2 {
		t.Fatalf("trades = %d, %q, %v", len(trades), next, err)
	}
	if trades[0].Side != "SELL" || trades[0].Price != "195.25" || *trades[0].ConfirmationID != exit.ID || trades[0].Strategy != "I" ||
		trades[0].External || *trades[0].Commission != "1.50" || trades[0].Quantity != "300" {
		t.Errorf("newest trade = %+v", trades[0])
	}
}

// A fill that order polling missed (IBKR's order status and orders list
// show the order working) is recovered from the executions: the
// confirmation ends filled at the right average price.
func TestMissedFillRecovered(t *testing.T) {
	w := newWorld(t, fastSim())
	user := w.subscriber(t, "", "120")
	w.env.Fault(t, ibkrsim.Fault{Kind: ibkrsim.FaultHideFills})

	entry := w.confirm(t, user, w.signal(t, "MSFT", "II", "entry"))
	w.auction(t, true, map[string]float64{"MSFT": 412.37})
	for i := 0; i < 5; i++ {
		time.Sleep(25 * time.Millisecond)
		if _, err := w.trade.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if c := w.confirmation(t, user, entry.ID); c.Status != trading.StatusSubmitted || c.FilledQuantity != "0" {
		t.Fatalf("with the fill hidden, polling says %s, %s filled; the fault did not hide it", c.Status, c.FilledQuantity)
	}

	if res := w.importNow(t, user); res.Recovered != 1 {
		t.Errorf("import = %+v, want 1 recovered", res)
	}
	c := w.confirmation(t, user, entry.ID)
	if c.Status != trading.StatusFilled || c.FilledQuantity != "120" || c.AvgFillPrice == nil || *c.AvgFillPrice != "412.37" {
		t.Fatalf("after the import: %s, %s at %v; want filled, 120 at 412.37", c.Status, c.FilledQuantity, c.AvgFillPrice)
	}
	if c.Commission == nil || *c.Commission != "1.00" { // 120 × 0.005 = 0.60, at least 1.00
		t.Errorf("commission = %v, want 1.00", c.Commission)
	}
	if last := c.Events[len(c.Events)-1]; !strings.Contains(last.Message, "recovered from IBKR's executions") {
		t.Errorf("last event %q does not say where the fill came from", last.Message)
	}
}

// An entry partly filled at the open, sold by two exits at two closes,
// each partly filled: FIFO splits the entry's commission by quantity, and
// the entry stays open while shares are left.
func TestPartialFillsAndTwoExits(t *testing.T) {
	cfg := fastSim()
	cfg.PartialFillFraction = 0.5
	w := newWorld(t, cfg)
	user := w.subscriber(t, "", "300")

	entry := w.confirm(t, user, w.signal(t, "NVDA", "III", "entry"))
	w.auction(t, true, map[string]float64{"NVDA": 100})
	w.reconcile(t, user, entry.ID, trading.StatusPartiallyFilled) // 150 of 300

	exit1 := w.confirm(t, user, w.signal(t, "NVDA", "III", "exit"))
	if exit1.Quantity != 150 {
		t.Fatalf("first exit sells %d, want the 150 bought", exit1.Quantity)
	}
	w.auction(t, false, map[string]float64{"NVDA": 110})
	w.reconcile(t, user, exit1.ID, trading.StatusPartiallyFilled) // 75 of 150
	w.importNow(t, user)

	exit2 := w.confirm(t, user, w.signal(t, "NVDA", "III", "exit"))
	if exit2.Quantity != 75 {
		t.Fatalf("second exit sells %d, want the 75 left", exit2.Quantity)
	}
	w.auction(t, false, map[string]float64{"NVDA": 120})
	w.importNow(t, user) // 37 of 75, recovered from the executions

	// 75 × 10 − 1.00 × 75/150 − 1.00 = 748.50; 37 × 20 − 1.00 × 37/150 − 1.00 = 738.7533…
	want := []ledger.PnLRow{{Key: "NVDA", RealizedPnL: "1487.25", Commissions: "2.75", Trades: 2}}
	if diff := cmp.Diff(want, w.pnl(t, user, ledger.PnLFilter{Group: ledger.ByTicker})); diff != "" {
		t.Errorf("P&L by ticker (-want +got):\n%s", diff)
	}
	if e := w.confirmation(t, user, entry.ID); e.Closed {
		t.Error("the entry is closed with 38 shares left")
	}
	if x := w.confirmation(t, user, exit2.ID); x.FilledQuantity != "37" || x.Status != trading.StatusPartiallyFilled {
		t.Errorf("second exit = %s, %s filled; want partially filled, 37", x.Status, x.FilledQuantity)
	}
}

// An execution of an order placed elsewhere on the same account is stored,
// marked external, never attributed to a signal or a confirmation, and its
// round trip counts under "external".
func TestExternalExecution(t *testing.T) {
	w := newWorld(t, fastSim())
	ctx := context.Background()
	user := w.subscriber(t, "", "10")
	acct, err := w.env.Broker.ActiveAccount(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	// Another program on the same IBKR account (its own consumer).
	other := "another-front-end"
	w.env.Connect(t, other, acct.ID)
	ct, err := w.env.Broker.ResolveContract(ctx, other, "AAPL")
	if err != nil {
		t.Fatal(err)
	}
	for i, side := range []trading.Side{trading.Buy, trading.Sell} {
		_, err := w.env.Broker.PlaceOrder(ctx, other, trading.Order{Account: acct, Conid: ct.Conid, COID: "manual-" + string(side),
			OrderType: "MKT", Side: side, Quantity: 5, TIF: "DAY"})
		if err != nil {
			t.Fatalf("order %d: %v", i, err)
		}
	}
	entry := w.confirm(t, user, w.signal(t, "AAPL", "I", "entry"))
	w.auction(t, true, map[string]float64{"AAPL": 200})

	if res := w.importNow(t, user); res.Stored != 3 {
		t.Fatalf("import = %+v, want 3 stored", res)
	}
	trades, _, err := w.ledger.Trades(ctx, user, ledger.TradeFilter{})
	if err != nil {
		t.Fatal(err)
	}
	external := 0
	for _, tr := range trades {
		if tr.External {
			external++
			if tr.ConfirmationID != nil || tr.Strategy != "" {
				t.Errorf("external trade %+v is attributed", tr)
			}
		} else if *tr.ConfirmationID != entry.ID || tr.Strategy != "I" {
			t.Errorf("Ordertune's trade %+v is not the entry's", tr)
		}
	}
	if external != 2 {
		t.Errorf("%d external trades, want 2", external)
	}
	rows := w.pnl(t, user, ledger.PnLFilter{Group: ledger.ByStrategy})
	if len(rows) != 1 || rows[0].Key != ledger.ExternalStrategy || rows[0].Trades != 1 {
		t.Errorf("P&L by strategy = %+v, want only the external round trip", rows)
	}
	if e := w.confirmation(t, user, entry.ID); e.Status != trading.StatusFilled || e.FilledQuantity != "10" || e.Closed {
		t.Errorf("entry = %s, %s filled, closed %v; the external sell must not close it", e.Status, e.FilledQuantity, e.Closed)
	}

	// The entry's order detail lists its own execution only; anyone
	// else, or an id that is none, gets none.
	execs, err := w.ledger.OrderExecutions(ctx, user, entry.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(execs) != 1 || *execs[0].ConfirmationID != entry.ID || execs[0].Quantity != "10" || execs[0].Price != "200.00" ||
		execs[0].Commission == nil || *execs[0].Commission != "1.00" || execs[0].ExecutedAt.IsZero() {
		t.Errorf("the entry's executions = %+v, want its one fill of 10 at 200.00, commission 1.00", execs)
	}
	for _, c := range []struct{ user, id string }{{w.admin, entry.ID}, {user, "not-a-uuid"}, {user, "00000000-0000-0000-0000-000000000000"}} {
		if got, err := w.ledger.OrderExecutions(ctx, c.user, c.id); err != nil || len(got) != 0 {
			t.Errorf("executions of %s for %s = %+v, %v; want none", c.id, c.user, got, err)
		}
	}
}

// Positions are read from the active connection only.
func TestPositionsOtherMode(t *testing.T) {
	w := newWorld(t, fastSim())
	user := w.subscriber(t, "", "10")
	_, err := w.ledger.Positions(context.Background(), user, "live")
	if err == nil || !strings.Contains(err.Error(), "active broker connection") {
		t.Errorf("positions of the inactive mode: %v, want a conflict", err)
	}
}
