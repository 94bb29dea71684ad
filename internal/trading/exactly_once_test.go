package trading_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

// TestConcurrentConfirmsPlaceOneOrder fires 50 confirms at once for one
// signal and side — with one Idempotency-Key, and with 50 different keys —
// and expects one row and one order at the simulator, and every caller to
// see that one confirmation.
func TestConcurrentConfirmsPlaceOneOrder(t *testing.T) {
	t.Parallel()
	for _, sameKey := range []bool{true, false} {
		t.Run(fmt.Sprintf("same key %v", sameKey), func(t *testing.T) {
			ctx := context.Background()
			w, u := newTrader(t, "7")
			g := w.signal(t, nil)
			const n = 50
			type result struct {
				id     string
				replay bool
				status trading.Status
				err    error
			}
			results := make([]result, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					key := "one-key"
					if !sameKey {
						key = fmt.Sprintf("key-%d", i)
					}
					<-start
					c, replay, err := w.svc.Confirm(ctx, u, g.ID, key, "BUY")
					results[i] = result{c.ID, replay, c.Status, err}
				}()
			}
			close(start)
			wg.Wait()
			var rows int
			var rowID string
			if err := w.pool.QueryRow(ctx, `SELECT count(*), min(id::text) FROM confirmations`).Scan(&rows, &rowID); err != nil {
				t.Fatal(err)
			}
			if rows != 1 {
				t.Fatalf("confirmation rows = %d, want 1", rows)
			}
			firsts := 0
			for i, r := range results {
				if r.err != nil || r.id != rowID || r.status != trading.StatusSubmitted {
					t.Errorf("confirm %d = (%s, %s, %v), want (%s, submitted, nil)", i, r.id, r.status, r.err, rowID)
				}
				if !r.replay {
					firsts++
				}
			}
			if firsts != 1 {
				t.Errorf("%d confirms claim to be the first, want 1", firsts)
			}
			want := []simOrder{{COID: rowID, Side: "BUY", OrderType: "MKT", TIF: "OPG", Quantity: 7}}
			if diff := cmp.Diff(want, simOrders(w.env.Orders(t))); diff != "" {
				t.Errorf("orders at the simulator (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, u := newTrader(t, "2")
	g1, g2 := w.signal(t, nil), w.signal(t, func(n *trading.NewSignal) { n.Ticker = "MSFT" })
	first, replay, err := w.svc.Confirm(ctx, u, g1.ID, "k", "BUY")
	if err != nil || replay {
		t.Fatalf("first confirm: replay %v err %v", replay, err)
	}
	again, replay, err := w.svc.Confirm(ctx, u, g1.ID, "k", "BUY")
	if err != nil || !replay || again.ID != first.ID {
		t.Errorf("repeat = (%s, replay %v, %v), want the first result %s", again.ID, replay, err, first.ID)
	}
	_, _, err = w.svc.Confirm(ctx, u, g2.ID, "k", "BUY")
	if e := errs.As(err); e == nil || e.Code != errs.Invalid || len(e.Fields) != 1 || e.Fields[0].Field != "Idempotency-Key" {
		t.Errorf("same key, other signal: err = %v, want a field error on Idempotency-Key (422)", err)
	}
	for _, key := range []string{"", strings.Repeat("x", 256), "has space"} {
		if _, _, err := w.svc.Confirm(ctx, u, g1.ID, key, "BUY"); errs.CodeOf(err) != errs.Invalid {
			t.Errorf("key %q: err = %v, want invalid_argument", key, err)
		}
	}
	// Another user's key space is separate.
	other := w.subscriber(t, trading.SizeShares, "1")
	c, replay, err := w.svc.Confirm(ctx, other, g1.ID, "k", "BUY")
	if err != nil || replay || c.ID == first.ID {
		t.Errorf("other user, same key: (%s, replay %v, %v), want a new confirmation", c.ID, replay, err)
	}
	if got := len(w.env.Orders(t)); got != 2 {
		t.Errorf("orders at the simulator = %d, want 2", got)
	}
}

// ordersPath matches the place-order endpoint of any account.
const ordersPath = "/iserver/account/*/orders"

// TestBrokerFaults runs one confirm per IBKR misbehaviour and checks the
// confirmation's outcome, the orders at the simulator and how many live
// session tokens were made.
func TestBrokerFaults(t *testing.T) {
	t.Parallel()
	type want struct {
		status     trading.Status
		code       errs.Code // of Confirm's error; "" for none
		msgHas     string
		orders     int
		handshakes int
	}
	tests := []struct {
		name  string
		sim   func() ibkrsim.Config
		tune  func(*trading.Config, *tradetest.SimBrokerOptions)
		setup func(t *testing.T, w *world, user string)
		want  want
	}{
		{name: "reply chain of allowlisted questions is confirmed",
			sim: func() ibkrsim.Config {
				c := fastSim()
				c.Questions.Rules = []ibkrsim.QuestionRule{{MessageID: "o403"}, {MessageID: "o10151", OrderType: "MKT"}}
				return c
			},
			// Nothing suppressed, so IBKR asks o163 (first order), o403 and o10151 in a chain.
			tune: func(_ *trading.Config, b *tradetest.SimBrokerOptions) { b.NoSuppress = true },
			want: want{status: trading.StatusSubmitted, orders: 1, handshakes: 1}},
		{name: "unknown question is declined and shown",
			setup: func(t *testing.T, w *world, _ string) {
				w.env.Fault(t, ibkrsim.Fault{Path: ordersPath, Kind: ibkrsim.FaultReplyQuestion, Value: json.RawMessage(`"o999"`), Count: 1})
			},
			want: want{status: trading.StatusFailed, code: errs.BrokerQuestionNotAllowlisted, msgHas: "Are you sure you want to submit this order? [o999]", orders: 0, handshakes: 1}},
		{name: "rejection keeps IBKR's text",
			setup: func(t *testing.T, w *world, _ string) {
				// A conid IBKR does not know: the order is refused.
				if _, err := w.pool.Exec(context.Background(), `INSERT INTO conids (ticker, conid, resolved_at) VALUES ('AAPL', 999, now())`); err != nil {
					t.Fatal(err)
				}
			},
			want: want{status: trading.StatusFailed, code: errs.BrokerOrderRejected, msgHas: "Contract 999 is not tradable: invalid conid", orders: 0, handshakes: 1}},
		{name: "no bridge re-initialises and sends once",
			setup: func(t *testing.T, w *world, _ string) {
				w.env.Fault(t, ibkrsim.Fault{Path: ordersPath, Kind: ibkrsim.FaultCompeting, Count: 1})
			},
			want: want{status: trading.StatusSubmitted, orders: 1, handshakes: 2}},
		{name: "LST expired mid-flow makes a new one and sends once",
			setup: func(t *testing.T, w *world, _ string) {
				w.env.Fault(t, ibkrsim.Fault{Path: ordersPath, Kind: ibkrsim.FaultInvalidLST, Count: 1})
			},
			want: want{status: trading.StatusSubmitted, orders: 1, handshakes: 2}},
		{name: "one 429 is sat out",
			setup: func(t *testing.T, w *world, _ string) {
				w.env.Fault(t, ibkrsim.Fault{Path: ordersPath, Kind: ibkrsim.FaultStatus, Value: json.RawMessage(`429`), Count: 1})
			},
			want: want{status: trading.StatusSubmitted, orders: 1, handshakes: 1}},
		{name: "lasting 429 fails the confirmation",
			setup: func(t *testing.T, w *world, _ string) {
				w.env.Fault(t, ibkrsim.Fault{Path: ordersPath, Kind: ibkrsim.FaultStatus, Value: json.RawMessage(`429`), Count: 10})
			},
			want: want{status: trading.StatusFailed, code: errs.BrokerRateLimited, msgHas: "Too Many Requests", orders: 0, handshakes: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			simCfg := fastSim()
			if tt.sim != nil {
				simCfg = tt.sim()
			}
			w := newWorld(t, simCfg, tt.tune)
			u := w.subscriber(t, trading.SizeShares, "4")
			g := w.signal(t, nil)
			// Open the session first, so that the fault strikes mid-flow.
			if _, err := w.env.Broker.Session(ctx, u); err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(t, w, u)
			}
			c, _, err := w.svc.Confirm(ctx, u, g.ID, "k", "BUY")
			got := want{status: c.Status, code: errs.CodeOf(err), orders: len(w.env.Orders(t)), handshakes: w.env.Broker.Handshakes(u)}
			if err != nil && strings.Contains(errs.As(err).Message, tt.want.msgHas) {
				got.msgHas = tt.want.msgHas
			} else if err != nil {
				got.msgHas = errs.As(err).Message
			}
			if tt.want.status == trading.StatusFailed {
				// The failed row shows the same code and IBKR's text.
				stored, rerr := w.svc.Confirmation(ctx, u, c.ID)
				if rerr != nil || stored.Error == nil || string(stored.Error.Code) != string(tt.want.code) || !strings.Contains(stored.Error.Message, tt.want.msgHas) {
					t.Errorf("stored confirmation = %+v (%v), want failed with %s and %q", stored, rerr, tt.want.code, tt.want.msgHas)
				}
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
			if tt.want.orders == 1 {
				if o := w.env.Orders(t)[0]; o.COID != c.ID {
					t.Errorf("order cOID = %s, want the confirmation id %s", o.COID, c.ID)
				}
			}
		})
	}
}

// TestTimeoutAfterAcceptIsSettledByCOID loses IBKR's answer after the order
// was taken: the confirm answers "unknown" (HTTP 202), reconciliation finds
// the order by its cOID, and nothing is sent twice.
func TestTimeoutAfterAcceptIsSettledByCOID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, u := newTrader(t, "4")
	g := w.signal(t, nil)
	if _, err := w.env.Broker.Session(ctx, u); err != nil {
		t.Fatal(err)
	}
	w.env.Fault(t, ibkrsim.Fault{Path: ordersPath, Kind: ibkrsim.FaultTimeoutAfterAccept, Count: 1})
	c, replay, err := w.svc.Confirm(ctx, u, g.ID, "k", "BUY")
	if err != nil || replay || c.Status != trading.StatusUnknown {
		t.Fatalf("confirm = (%s, replay %v, %v), want unknown", c.Status, replay, err)
	}
	// A retry of the click while unknown gets the same unknown confirmation.
	again, replay, err := w.svc.Confirm(ctx, u, g.ID, "k", "BUY")
	if err != nil || !replay || again.ID != c.ID || again.Status != trading.StatusUnknown {
		t.Errorf("repeat = (%s %s, replay %v, %v), want the same unknown confirmation", again.ID, again.Status, replay, err)
	}
	w.settle(t)
	got, err := w.svc.Confirmation(ctx, u, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	orders := w.env.Orders(t)
	if len(orders) != 1 || orders[0].COID != c.ID {
		t.Fatalf("orders at the simulator = %+v, want one with cOID %s", orders, c.ID)
	}
	if got.Status != trading.StatusSubmitted || got.BrokerOrderID == nil || *got.BrokerOrderID != orders[0].OrderID || got.Error != nil {
		t.Errorf("settled = %+v, want submitted with order id %s and no error", got, orders[0].OrderID)
	}
	var statuses []string
	for _, e := range got.Events {
		statuses = append(statuses, string(e.Status))
	}
	if diff := cmp.Diff([]string{"pending", "unknown", "submitted"}, statuses); diff != "" {
		t.Errorf("status history (-want +got):\n%s", diff)
	}
	// Every change is in the audit trail too, written with it.
	var actions []string
	if err := w.pool.QueryRow(ctx, `SELECT array_agg(action ORDER BY id) FROM audit_events WHERE subject = $1`, c.ID).Scan(&actions); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"confirmation.create", "confirmation.unknown", "confirmation.submitted"}, actions); diff != "" {
		t.Errorf("audit trail (-want +got):\n%s", diff)
	}
}

// TestDuplicateCOIDMeansAlreadyPlaced: IBKR already holds an order with the
// confirmation's cOID; the confirm must treat it as placed and reconcile,
// never send another order.
func TestDuplicateCOIDMeansAlreadyPlaced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const coid = "6f1c1e9a-3b7d-4c1e-9a55-0d4f1e2a3b4c"
	w := newWorld(t, fastSim(), func(c *trading.Config, _ *tradetest.SimBrokerOptions) {
		c.NewID = func() string { return coid }
	})
	u := w.subscriber(t, trading.SizeShares, "4")
	g := w.signal(t, nil)
	conn, err := w.env.Broker.Session(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	// The order already reached IBKR (say, from an earlier attempt).
	if _, err := conn.Session.PlaceOrder(ctx, conn.Account.ID, ibkr.Order{Conid: 265598, COID: coid, OrderType: "MKT", Side: "BUY", Quantity: 4, TIF: "OPG"}, nil); err != nil {
		t.Fatal(err)
	}
	c, _, err := w.svc.Confirm(ctx, u, g.ID, "k", "BUY")
	if err != nil || c.Status != trading.StatusUnknown {
		t.Fatalf("confirm = (%s, %v), want unknown", c.Status, err)
	}
	w.settle(t)
	got, err := w.svc.Confirmation(ctx, u, coid)
	if err != nil {
		t.Fatal(err)
	}
	orders := w.env.Orders(t)
	if len(orders) != 1 || got.Status != trading.StatusSubmitted || got.BrokerOrderID == nil || *got.BrokerOrderID != orders[0].OrderID {
		t.Errorf("after reconciliation: confirmation %+v, orders %+v; want submitted, one order", got, orders)
	}
}

// TestTwoInstancesShareTheAccountLock runs two services (two server
// instances, each with the account's advisory lock) on one database, confirming
// different signals of one user at once: every confirm places its one
// order.
func TestTwoInstancesShareTheAccountLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, fastSim(), nil)
	other, err := trading.New(trading.Config{Pool: w.pool, Broker: w.env.Broker})
	if err != nil {
		t.Fatal(err)
	}
	u := w.subscriber(t, trading.SizeShares, "1")
	var wg sync.WaitGroup
	ids := make([]string, 10)
	for i := range ids {
		g := w.signal(t, nil)
		svc := w.svc
		if i%2 == 1 {
			svc = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := svc.Confirm(ctx, u, g.ID, g.ID, "BUY")
			if err != nil || c.Status != trading.StatusSubmitted {
				t.Errorf("confirm %d = (%s, %v)", i, c.Status, err)
			}
			ids[i] = c.ID
		}()
	}
	wg.Wait()
	var got []string
	for _, o := range w.env.Orders(t) {
		got = append(got, o.COID)
	}
	slices.Sort(got)
	slices.Sort(ids)
	if diff := cmp.Diff(ids, got); diff != "" {
		t.Errorf("cOIDs at the simulator (-want +got):\n%s", diff)
	}
}
