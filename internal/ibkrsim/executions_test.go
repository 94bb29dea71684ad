package ibkrsim_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// liveRefs lists the order_ref of GET /iserver/account/orders.
func (c *client) liveRefs() []string {
	c.t.Helper()
	r := c.call(http.MethodGet, "/iserver/account/orders", nil)
	mustStatus(c.t, "live orders", r, http.StatusOK)
	var live struct {
		Orders []struct {
			OrderRef string `json:"order_ref"`
		} `json:"orders"`
	}
	r.json(c.t, &live)
	refs := []string{}
	for _, o := range live.Orders {
		refs = append(refs, o.OrderRef)
	}
	return refs
}

// tradeRefs lists the order_ref of GET /iserver/account/trades with query.
func (c *client) tradeRefs(query string) []string {
	c.t.Helper()
	r := c.call(http.MethodGet, "/iserver/account/trades"+query, nil)
	mustStatus(c.t, "trades"+query, r, http.StatusOK)
	var trades []struct {
		OrderRef string `json:"order_ref"`
	}
	r.json(c.t, &trades)
	refs := []string{}
	for _, tr := range trades {
		refs = append(refs, tr.OrderRef)
	}
	return refs
}

// TestFaultEmptyOrders: the orders list is empty for the fault's time, as
// after IBKR's nightly reset, while the order still exists, answers its
// status and fills; then the list shows it again.
func TestFaultEmptyOrders(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}, Questions: ibkrsim.Questions{NoFirstOrderQuestion: true}})
	c := f.ready("")
	id, _ := c.place(orderBody(c.account, 265598, "e-1", "MKT", "BUY", 5, "OPG", 0))
	if diff := cmp.Diff([]string{"e-1"}, c.liveRefs()); diff != "" {
		t.Fatalf("before the fault (-want +got):\n%s", diff)
	}

	f.fault("empty_orders", "", "60s", 0)
	if got := c.liveRefs(); len(got) != 0 {
		t.Errorf("during the reset: live orders %v, want none", got)
	}
	if st := c.status(id); st.OrderStatus != "PreSubmitted" {
		t.Errorf("order status during the reset = %+v, want PreSubmitted", st)
	}
	mustStatus(t, "auction", f.control(http.MethodPost, "/sim/auction/open", nil), http.StatusOK)
	if st := c.status(id); st.OrderStatus != "Filled" {
		t.Errorf("order status after the auction = %+v, want Filled", st)
	}
	if diff := cmp.Diff([]string{"e-1"}, c.tradeRefs("")); diff != "" {
		t.Errorf("trades during the reset (-want +got):\n%s", diff)
	}
	f.clock.Advance(59 * time.Second)
	if got := c.liveRefs(); len(got) != 0 {
		t.Errorf("59 s into the reset: live orders %v, want none", got)
	}
	f.clock.Advance(time.Second)
	if diff := cmp.Diff([]string{"e-1"}, c.liveRefs()); diff != "" {
		t.Errorf("after 60 s (-want +got):\n%s", diff)
	}
	if r := f.control(http.MethodGet, "/sim/faults", nil); string(r.Body) != "[]\n" && string(r.Body) != "[]" {
		t.Errorf("the expired fault is still listed: %s", r.Body)
	}

	// Without a value it lasts until cleared.
	f.fault("empty_orders", "", nil, 0)
	f.clock.Advance(24 * time.Hour)
	if _, err := c.handshake(); err != nil { // the day-old token expired
		t.Fatal(err)
	}
	mustStatus(t, "ssodh/init", c.call(http.MethodPost, "/iserver/auth/ssodh/init", map[string]bool{"publish": true, "compete": true}), http.StatusOK)
	mustStatus(t, "accounts", c.call(http.MethodGet, "/iserver/accounts", nil), http.StatusOK)
	if got := c.liveRefs(); len(got) != 0 {
		t.Errorf("a day into an uncleared reset: live orders %v, want none", got)
	}
	mustStatus(t, "clear", f.control(http.MethodDelete, "/sim/faults", nil), http.StatusNoContent)
	if diff := cmp.Diff([]string{"e-1"}, c.liveRefs()); diff != "" {
		t.Errorf("after clearing (-want +got):\n%s", diff)
	}
}

// TestTradesDays: the executions list covers the current day, or the days
// asked for, at most seven; GET /sim/executions lists every fill.
func TestTradesDays(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}, Questions: ibkrsim.Questions{NoFirstOrderQuestion: true}})
	c := f.ready("")
	c.place(orderBody(c.account, 265598, "old", "MKT", "BUY", 2, "DAY", 0)) // fills at once, Monday 14:00
	reopen := func() {
		t.Helper()
		if _, err := c.handshake(); err != nil {
			t.Fatal(err)
		}
		mustStatus(t, "ssodh/init", c.call(http.MethodPost, "/iserver/auth/ssodh/init", map[string]bool{"publish": true, "compete": true}), http.StatusOK)
		mustStatus(t, "accounts", c.call(http.MethodGet, "/iserver/accounts", nil), http.StatusOK)
	}
	f.clock.Advance(3 * 24 * time.Hour) // Thursday
	reopen()
	c.place(orderBody(c.account, 265598, "new", "MKT", "SELL", 1, "DAY", 0))
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"new"}},
		{"?days=1", []string{"new"}},
		{"?days=3", []string{"new"}},
		{"?days=4", []string{"old", "new"}},
		{"?days=90", []string{"old", "new"}},
	} {
		if diff := cmp.Diff(tc.want, c.tradeRefs(tc.query)); diff != "" {
			t.Errorf("trades%s (-want +got):\n%s", tc.query, diff)
		}
	}
	for _, q := range []string{"?days=0", "?days=-1", "?days=x"} {
		mustStatus(t, "trades"+q, c.call(http.MethodGet, "/iserver/account/trades"+q, nil), http.StatusBadRequest)
	}
	f.clock.Advance(7 * 24 * time.Hour) // the Thursday after: seven days back reach Friday
	reopen()
	if got := c.tradeRefs("?days=7"); len(got) != 0 {
		t.Errorf("a week later: trades %v, want none", got)
	}

	r := f.control(http.MethodGet, "/sim/executions?account="+c.account, nil)
	mustStatus(t, "GET /sim/executions", r, http.StatusOK)
	var execs []ibkrsim.SimExecution
	r.json(t, &execs)
	type row struct {
		COID, Side string
		Qty, Comm  float64
	}
	var got []row
	for _, e := range execs {
		if e.ExecutionID == "" || e.OrderID == "" || e.Conid != 265598 || e.Ticker != "AAPL" || e.Account != c.account {
			t.Errorf("execution %+v lacks its ids", e)
		}
		got = append(got, row{e.COID, e.Side, e.Quantity, e.Commission})
	}
	if diff := cmp.Diff([]row{{"old", "BUY", 2, 1}, {"new", "SELL", 1, 1}}, got); diff != "" {
		t.Errorf("GET /sim/executions (-want +got):\n%s", diff)
	}
	r = f.control(http.MethodGet, "/sim/executions?account=DU0", nil)
	if string(r.Body) != "[]\n" && string(r.Body) != "[]" {
		t.Errorf("another account's executions: %s", r.Body)
	}
}
