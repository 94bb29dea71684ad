package ibkrsim_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// TestSnapshot: last, bid and ask are near the reference close and ordered;
// an unknown conid comes back without fields; the route needs a bridge.
func TestSnapshot(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{})
	c := f.ready("DU2000001")
	aapl, _ := f.sim.Security("AAPL")
	r := c.call(http.MethodGet, "/iserver/marketdata/snapshot?conids=265598,1&fields=31,84,86,55,7741", nil)
	mustStatus(t, "snapshot", r, http.StatusOK)
	var rows []map[string]any
	r.json(t, &rows)
	if len(rows) != 2 {
		t.Fatalf("rows = %s", r.Body)
	}
	num := func(v any) float64 {
		s, _ := v.(string)
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("field %v is not a decimal string", v)
		}
		return n
	}
	last, bid, ask := num(rows[0]["31"]), num(rows[0]["84"]), num(rows[0]["86"])
	if !(bid < last && last < ask) || last < aapl.RefPrice*0.98 || last > aapl.RefPrice*1.02 {
		t.Errorf("bid %v last %v ask %v, ref %v", bid, last, ask, aapl.RefPrice)
	}
	if rows[0]["55"] != "AAPL" || num(rows[0]["7741"]) != aapl.RefPrice || rows[0]["conid"] != float64(265598) {
		t.Errorf("row = %v", rows[0])
	}
	if _, ok := rows[1]["31"]; ok || rows[1]["conid"] != float64(1) {
		t.Errorf("unknown conid row = %v", rows[1])
	}
	tests := []struct {
		name, pathQuery string
		want            int
	}{
		{"no conids", "/iserver/marketdata/snapshot", http.StatusBadRequest},
		{"bad conid", "/iserver/marketdata/snapshot?conids=abc", http.StatusBadRequest},
		{"history without conid", "/iserver/marketdata/history", http.StatusBadRequest},
		{"history unknown conid", "/iserver/marketdata/history?conid=1", http.StatusBadRequest},
		{"history bad bar", "/iserver/marketdata/history?conid=265598&period=1d&bar=1x", http.StatusBadRequest},
		{"history bar over period", "/iserver/marketdata/history?conid=265598&period=1d&bar=1w", http.StatusBadRequest},
		{"info unknown conid", "/iserver/contract/1/info", http.StatusBadRequest},
		{"info bad conid", "/iserver/contract/x/info", http.StatusBadRequest},
		{"positions of another account", "/portfolio/DU9999999/positions", http.StatusUnauthorized},
		{"summary of another account", "/portfolio/DU9999999/summary", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.clock.Advance(200 * time.Millisecond) // keep under the pacing limit
			mustStatus(t, tc.pathQuery, c.call(http.MethodGet, tc.pathQuery, nil), tc.want)
		})
	}
	noBridge := f.register("DU2000002")
	mustStatus(t, "snapshot without bridge", noBridge.call(http.MethodGet, "/iserver/marketdata/snapshot?conids=265598", nil), http.StatusBadRequest)
}

// TestHistoryAndInfo: bars end at the reference close, one per bar length,
// and contract info names the contract.
func TestHistoryAndInfo(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{})
	c := f.ready("DU2000003")
	msft, _ := f.sim.Security("MSFT")
	r := c.call(http.MethodGet, "/iserver/marketdata/history?conid="+strconv.Itoa(msft.Conid)+"&period=1w&bar=1d", nil)
	mustStatus(t, "history", r, http.StatusOK)
	var h struct {
		Symbol string `json:"symbol"`
		Data   []struct {
			O, C, H, L, V float64
			T             int64
		} `json:"data"`
	}
	r.json(t, &h)
	if h.Symbol != "MSFT" || len(h.Data) != 7 {
		t.Fatalf("history = %s", r.Body)
	}
	lastBar := h.Data[len(h.Data)-1]
	if lastBar.C != msft.RefPrice {
		t.Errorf("last close %v, want the reference %v", lastBar.C, msft.RefPrice)
	}
	for i, b := range h.Data {
		if b.H < b.O || b.H < b.C || b.L > b.O || b.L > b.C || (i > 0 && b.T-h.Data[i-1].T != 86400000) {
			t.Errorf("bar %d = %+v", i, b)
		}
		if i > 0 && h.Data[i-1].C != b.O {
			t.Errorf("bar %d opens at %v, previous closed at %v", i, b.O, h.Data[i-1].C)
		}
	}
	r = c.call(http.MethodGet, "/iserver/contract/"+strconv.Itoa(msft.Conid)+"/info", nil)
	mustStatus(t, "info", r, http.StatusOK)
	var info map[string]any
	r.json(t, &info)
	got := map[string]any{"symbol": info["symbol"], "con_id": info["con_id"], "company_name": info["company_name"], "instrument_type": info["instrument_type"]}
	want := map[string]any{"symbol": "MSFT", "con_id": float64(msft.Conid), "company_name": msft.Name, "instrument_type": "STK"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("info (-want +got):\n%s", diff)
	}
}

// TestPortfolioFromFills: positions and the summary follow the account's
// own fills, and one account never sees another's.
func TestPortfolioFromFills(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{})
	c := f.ready("DU2000004")
	other := f.ready("DU2000005")
	aapl, _ := f.sim.Security("AAPL")
	c.place(orderBody(c.account, aapl.Conid, "pf-1", "MKT", "BUY", 10, "DAY", 0))
	c.place(orderBody(c.account, aapl.Conid, "pf-2", "MKT", "SELL", 4, "DAY", 0))
	r := c.call(http.MethodGet, "/portfolio/"+c.account+"/positions", nil)
	mustStatus(t, "positions", r, http.StatusOK)
	var pos []struct {
		AcctID   string  `json:"acctId"`
		Conid    int     `json:"conid"`
		Position float64 `json:"position"`
		AvgCost  float64 `json:"avgCost"`
		Ticker   string  `json:"ticker"`
	}
	r.json(t, &pos)
	type row = struct {
		AcctID   string  `json:"acctId"`
		Conid    int     `json:"conid"`
		Position float64 `json:"position"`
		AvgCost  float64 `json:"avgCost"`
		Ticker   string  `json:"ticker"`
	}
	if diff := cmp.Diff([]row{{c.account, aapl.Conid, 6, aapl.RefPrice, "AAPL"}}, pos); diff != "" {
		t.Errorf("positions (-want +got):\n%s", diff)
	}
	mustStatus(t, "page 1", c.call(http.MethodGet, "/portfolio/"+c.account+"/positions/1", nil), http.StatusOK)
	r = other.call(http.MethodGet, "/portfolio/"+other.account+"/positions", nil)
	mustStatus(t, "other positions", r, http.StatusOK)
	if string(r.Body) != "[]" {
		t.Errorf("other account's positions = %s", r.Body)
	}
	r = c.call(http.MethodGet, "/portfolio/"+c.account+"/summary", nil)
	mustStatus(t, "summary", r, http.StatusOK)
	var sum map[string]struct {
		Amount float64 `json:"amount"`
		Value  any     `json:"value"`
	}
	r.json(t, &sum)
	wantCash := 1_000_000 - 6*aapl.RefPrice
	if d := sum["totalcashvalue"].Amount - wantCash; d > 0.01 || d < -0.01 || sum["accountcode"].Value != c.account {
		b, _ := json.Marshal(sum)
		t.Errorf("summary = %s, want cash %v", b, wantCash)
	}
}
