package ibkrsim_test

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// TestFaultHideFills: with hide_fills, the order status and the orders
// list show a filled order as working and unfilled, as a poll that missed
// the fill; the executions list it, with IBKR's fixed-pricing commission;
// cleared, the order shows filled again.
func TestFaultHideFills(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}, Questions: ibkrsim.Questions{NoFirstOrderQuestion: true}})
	c := f.ready("")
	id, _ := c.place(orderBody(c.account, 265598, "h-1", "MKT", "BUY", 300, "OPG", 0))
	f.fault("hide_fills", "", nil, 0)
	mustStatus(t, "auction", f.control(http.MethodPost, "/sim/auction/open", map[string]any{"prices": map[string]float64{"AAPL": 200}}), http.StatusOK)
	if st := c.status(id); st.OrderStatus != "Submitted" || st.CumFill != "0.0" {
		t.Errorf("order status with the fill hidden = %+v, want Submitted, 0 filled", st)
	}
	if diff := cmp.Diff([]string{"h-1"}, c.tradeRefs("")); diff != "" {
		t.Errorf("trades with the fill hidden (-want +got):\n%s", diff)
	}
	r := f.control(http.MethodGet, "/sim/executions?account="+c.account, nil)
	var execs []ibkrsim.SimExecution
	r.json(t, &execs)
	if len(execs) != 1 || execs[0].Commission != 1.5 { // 300 × USD 0.005
		t.Errorf("executions = %+v, want one with commission 1.50", execs)
	}
	mustStatus(t, "clear", f.control(http.MethodDelete, "/sim/faults", nil), http.StatusNoContent)
	if st := c.status(id); st.OrderStatus != "Filled" || st.CumFill != "300.0" {
		t.Errorf("order status after clearing = %+v, want Filled", st)
	}
}

// TestPortfolioAccountsFirst: with PortfolioAccountsFirst, positions are
// refused until /portfolio/accounts was called; then they and
// GET /sim/positions show the account's holding.
func TestPortfolioAccountsFirst(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{PortfolioAccountsFirst: true, Pacing: ibkrsim.Pacing{Disabled: true},
		Questions: ibkrsim.Questions{NoFirstOrderQuestion: true}})
	c := f.ready("")
	c.place(orderBody(c.account, 265598, "p-1", "MKT", "BUY", 10, "OPG", 0))
	mustStatus(t, "auction", f.control(http.MethodPost, "/sim/auction/open", map[string]any{"prices": map[string]float64{"AAPL": 200}}), http.StatusOK)

	r := c.call(http.MethodGet, "/portfolio/"+c.account+"/positions/0", nil)
	mustStatus(t, "positions before priming", r, http.StatusBadRequest)
	r = c.call(http.MethodGet, "/portfolio/accounts", nil)
	mustStatus(t, "portfolio accounts", r, http.StatusOK)
	var accts []struct {
		ID string `json:"id"`
	}
	r.json(t, &accts)
	if len(accts) != 1 || accts[0].ID != c.account {
		t.Errorf("portfolio accounts = %+v", accts)
	}
	r = c.call(http.MethodGet, "/portfolio/"+c.account+"/positions/0", nil)
	mustStatus(t, "positions", r, http.StatusOK)
	var pos []struct {
		Ticker   string  `json:"ticker"`
		Position float64 `json:"position"`
		AvgCost  float64 `json:"avgCost"`
	}
	r.json(t, &pos)
	if len(pos) != 1 || pos[0].Ticker != "AAPL" || pos[0].Position != 10 || pos[0].AvgCost != 200 {
		t.Errorf("positions = %+v", pos)
	}
	r = f.control(http.MethodGet, "/sim/positions?account="+c.account, nil)
	var sp []ibkrsim.SimPosition
	r.json(t, &sp)
	if diff := cmp.Diff([]ibkrsim.SimPosition{{Account: c.account, Ticker: "AAPL", Conid: 265598, Quantity: 10, AvgCost: 200}}, sp); diff != "" {
		t.Errorf("GET /sim/positions (-want +got):\n%s", diff)
	}
}
