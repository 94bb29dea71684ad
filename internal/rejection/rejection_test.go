package rejection

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// TestExplain is the table users' advice comes from: IBKR's texts (as the
// simulator and IBKR's Web API and TWS word them) to a kind.
func TestExplain(t *testing.T) {
	for _, tc := range []struct {
		text string
		want Kind
	}{
		{"Order rejected - reason: The following order size exceeds the Size Limit of 500 shares set in your order precautions.", SizeLimit},
		{"The following order \"BUY 900 AAPL MKT\" size exceeds the Size Limit of 500.", SizeLimit},
		{"Order quantity exceeds the maximum allowed", SizeLimit},
		{"Order rejected - reason: This account is flagged as a Pattern Day Trader and its Equity with Loan Value of 18,250.00 USD is below the 25,000.00 USD minimum required for day trading.", PatternDayTrader},
		{"Potential PDT violation: the order was rejected", PatternDayTrader},
		{"Day-trading is restricted: 3 day trades in 5 days", PatternDayTrader},
		{"Order rejected - reason: You do not have trading permissions for this instrument (STK on NASDAQ).", NoTradingPermission},
		{"No trading permissions.", NoTradingPermission},
		{"Order rejected - reason: Market data subscription required: you have no market data for this contract on NASDAQ.", NoMarketData},
		{"You do not have market data permissions for AAPL", NoMarketData},
		{"Order rejected - reason: Insufficient buying power: the order's initial margin of 51,230.00 USD exceeds the available funds of 12,400.00 USD.", InsufficientFunds},
		{"INSUFFICIENT FUNDS", InsufficientFunds},
		{"Order rejected - reason: The exchange is closed: this order is not accepted outside regular trading hours.", OutsideTradingHours},
		{"The order cannot be placed outside of trading hours", OutsideTradingHours},
		{"Order rejected", Unknown},
		{"", Unknown},
		{"Contract is not available for trading", Unknown},
	} {
		got := Explain(tc.text)
		if got.Kind != tc.want {
			t.Errorf("Explain(%q).Kind = %s, want %s", tc.text, got.Kind, tc.want)
		}
		if got.Advice == "" || strings.Contains(got.Advice, "\n") {
			t.Errorf("Explain(%q).Advice = %q, want one line", tc.text, got.Advice)
		}
	}
}

// TestAdvicePerKind: every kind has its own advice, and unknown texts get
// the general one.
func TestAdvicePerKind(t *testing.T) {
	seen := map[string]Kind{}
	for _, r := range rules {
		if prev, dup := seen[r.advice]; dup {
			t.Errorf("%s and %s share their advice", prev, r.kind)
		}
		seen[r.advice] = r.kind
	}
	if diff := cmp.Diff(Explanation{Kind: Unknown, Advice: GeneralAdvice}, Explain("something new")); diff != "" {
		t.Errorf("unknown text (-want +got):\n%s", diff)
	}
	if got, want := len(Kinds()), 7; got != want {
		t.Errorf("%d kinds, want %d", got, want)
	}
}

// FuzzExplain: any text, IBKR's or garbage, gets a known kind and advice,
// and a text's kind does not depend on its case.
func FuzzExplain(f *testing.F) {
	for _, s := range []string{"No trading permissions.", "Insufficient buying power", "size limit", "PDT", "market data",
		"outside regular trading hours", "\xff\xfe", strings.Repeat("day ", 1000) + "trading", "Ｍarket data", "İnsufficient"} {
		f.Add(s)
	}
	known := map[Kind]bool{}
	for _, k := range Kinds() {
		known[k] = true
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := Explain(s)
		if !known[e.Kind] || e.Advice == "" || !utf8.ValidString(e.Advice) {
			t.Fatalf("Explain(%q) = %+v", s, e)
		}
		if utf8.ValidString(s) && len(s) < maxText/4 {
			if up := Explain(strings.ToUpper(s)); strings.ToLower(strings.ToUpper(s)) == strings.ToLower(s) && up.Kind != e.Kind {
				t.Fatalf("Explain(%q) = %s but its upper case is %s", s, e.Kind, up.Kind)
			}
		}
	})
}
