package ibkrsim_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

func TestStocksAndSearch(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}})
	c := f.ready("")

	// AAPL exactly as PROTOCOL.md §6 shows it.
	const aapl = `{"AAPL":[{"name":"APPLE INC","assetClass":"STK","contracts":[{"conid":265598,"exchange":"NASDAQ","isUS":true},{"conid":38708077,"exchange":"MEXI","isUS":false}]},{"name":"APPLE INC-CDR","contracts":[{"conid":532640894,"exchange":"AEQLIT","isUS":false}]}]}`
	r := c.call(http.MethodGet, "/trsrv/stocks?symbols=AAPL", nil)
	mustStatus(t, "stocks", r, http.StatusOK)
	if diff := cmp.Diff(aapl, string(r.Body)); diff != "" {
		t.Errorf("AAPL (-want +got):\n%s", diff)
	}

	type listing struct {
		Conid int  `json:"conid"`
		IsUS  bool `json:"isUS"`
	}
	type entry struct {
		Name      string    `json:"name"`
		Contracts []listing `json:"contracts"`
	}
	var multi map[string][]entry
	r = c.call(http.MethodGet, "/trsrv/stocks?symbols=MSFT,NVDA,ZZZZ", nil)
	mustStatus(t, "stocks list", r, http.StatusOK)
	r.json(t, &multi)
	for _, sym := range []string{"MSFT", "NVDA"} {
		sec, _ := f.sim.Security(sym)
		var us []int
		for _, e := range multi[sym] {
			for _, l := range e.Contracts {
				if l.IsUS {
					us = append(us, l.Conid)
				}
			}
		}
		if diff := cmp.Diff([]int{sec.Conid}, us); diff != "" {
			t.Errorf("%s US listings (-want +got):\n%s", sym, diff)
		}
	}
	if got, ok := multi["ZZZZ"]; !ok || len(got) != 0 {
		t.Errorf("unknown symbol: %v", multi["ZZZZ"])
	}

	var found []struct {
		Conid       string `json:"conid"`
		Symbol      string `json:"symbol"`
		Description string `json:"description"`
	}
	r = c.call(http.MethodGet, "/iserver/secdef/search?symbol=AAPL&secType=STK", nil)
	mustStatus(t, "search", r, http.StatusOK)
	r.json(t, &found)
	if len(found) == 0 || found[0].Conid != "265598" || found[0].Description != "NASDAQ" {
		t.Errorf("search AAPL: %s", r.Body)
	}
}

func TestSecurityTable(t *testing.T) {
	sim := ibkrsim.New(ibkrsim.Config{})
	secs := sim.Securities()
	if len(secs) < 100 {
		t.Fatalf("%d tickers, want the NASDAQ-100", len(secs))
	}
	seen := map[int]string{}
	for _, s := range secs {
		for _, id := range append([]int{s.Conid, s.CDR}, s.Foreign[0].Conid) {
			if id == 0 {
				continue
			}
			if other, dup := seen[id]; dup {
				t.Errorf("conid %d of %s also belongs to %s", id, s.Ticker, other)
			}
			seen[id] = s.Ticker
		}
		if !(s.RefPrice > 0 && s.OpenPrice > 0 && s.ClosePrice > 0) {
			t.Errorf("%s prices %v %v %v", s.Ticker, s.RefPrice, s.OpenPrice, s.ClosePrice)
		}
		if d := s.OpenPrice/s.RefPrice - 1; d > 0.016 || d < -0.016 {
			t.Errorf("%s opens %.4f away from its reference", s.Ticker, d)
		}
	}
	// Conids never change: the table is the same for every server.
	again := ibkrsim.New(ibkrsim.Config{}).Securities()
	if diff := cmp.Diff(secs, again); diff != "" {
		t.Errorf("table differs between servers (-want +got):\n%s", diff)
	}
	aapl, _ := sim.Security("aapl")
	if aapl.Conid != 265598 || strconv.Itoa(aapl.Foreign[0].Conid) != "38708077" || aapl.CDR != 532640894 {
		t.Errorf("AAPL %+v", aapl)
	}
}
