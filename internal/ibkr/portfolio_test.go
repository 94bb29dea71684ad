package ibkr

import (
	"strconv"
	"strings"
	"testing"
)

// Positions as IBKR sends them (numbers as JSON numbers; conid as a
// number or a string), and a closed position (quantity 0) left out.
func TestParsePositions(t *testing.T) {
	body := `[{"acctId":"DU1234567","conid":265598,"contractDesc":"AAPL","position":300.0,"mktPrice":191.2,
		"mktValue":57360.0,"avgCost":190.5,"avgPrice":190.5,"unrealizedPnl":210.0,"currency":"USD","assetClass":"STK","ticker":"AAPL"},
		{"acctId":"DU1234567","conid":"272093","contractDesc":"MSFT","position":0,"mktPrice":400}]`
	got, err := parsePositions([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d positions, want 1 (the closed one left out): %+v", len(got), got)
	}
	p := got[0]
	if p.Account != "DU1234567" || p.Conid != 265598 || p.Ticker != "AAPL" || p.Quantity != "300.0" || p.AvgCost != "190.5" ||
		p.MarketValue != "57360.0" || p.UnrealizedPnL != "210.0" {
		t.Errorf("position = %+v", p)
	}
	for _, bad := range []string{`{"error":"x"}`, `[{"conid":"x"}]`} {
		if _, err := parsePositions([]byte(bad)); err == nil {
			t.Errorf("parsePositions(%s) accepted", bad)
		}
	}
}

func TestParsePortfolioAccounts(t *testing.T) {
	got, err := parsePortfolioAccounts([]byte(`[{"id":"DU1234567","accountId":"DU1234567","type":"DEMO"},{"accountId":"U7654321"},{"id":""}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "DU1234567" || got[0].Type != "DEMO" || got[1].ID != "U7654321" {
		t.Errorf("accounts = %+v", got)
	}
}

// FuzzParsePositions: IBKR's positions never panic the parser, and what it
// accepts is bounded and holds no closed position.
func FuzzParsePositions(f *testing.F) {
	fuzzList(f, parsePositions, func(t *testing.T, p Position) {
		if q, err := strconv.ParseFloat(strings.TrimSpace(string(p.Quantity)), 64); err != nil || q == 0 {
			t.Fatalf("closed or unreadable position kept: %+v", p)
		}
		if len(p.Account) > 504 || len(p.Ticker) > 504 {
			t.Fatalf("unbounded text kept: %d, %d bytes", len(p.Account), len(p.Ticker))
		}
	},
		`[{"acctId":"DU1","conid":265598,"contractDesc":"AAPL","position":300.0,"mktPrice":191.2,"mktValue":57360.0,"avgCost":190.5,"unrealizedPnl":210.0}]`,
		`[{"conid":"1","position":"-5","ticker":"BRK B"}]`, `[]`, `null`, ``, `{}`, `[{"position":0}]`, `[{"conid":1e400}]`,
		`[{"acctId":"`+strings.Repeat("x", 300)+`","position":1}]`)
}

// FuzzParsePortfolioAccounts: never a panic, never an empty account id.
func FuzzParsePortfolioAccounts(f *testing.F) {
	fuzzList(f, parsePortfolioAccounts, func(t *testing.T, a PortfolioAccount) {
		if strings.TrimSpace(a.ID) == "" || len(a.ID) > 504 {
			t.Fatalf("account id %q kept", a.ID)
		}
	}, `[{"id":"DU1234567","type":"DEMO"}]`, `[{"accountId":"U1"}]`, `[{"id":" "}]`, `null`, `{"error":"no"}`)
}

// fuzzList fuzzes a list parser from the seeds: it never panics, and check
// holds for every entry of a list it accepts.
func fuzzList[T any](f *testing.F, parse func([]byte) ([]T, error), check func(*testing.T, T), seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		list, err := parse([]byte(body))
		if err != nil {
			return
		}
		for _, v := range list {
			check(t, v)
		}
	})
}
