package risk

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/errs"
)

func sp(v string) *string { return &v }

// TestCheckAtBelowAbove puts each limit at, just below and just above
// what an order would make it.
func TestCheckAtBelowAbove(t *testing.T) {
	huge := Limits{MaxOrderValue: sp("99999999.00"), MaxSharesPerOrder: sp("99999999"), MaxOrdersPerDay: sp("99999999"), MaxDailyValue: sp("99999999.00")}
	// The order: 10 shares worth 1872.50; earlier today: 2 orders worth 3000.25.
	const qty, value = 10, "1872.50"
	used := map[string]Usage{Paper: {Orders: 2, Value: "3000.25"}}
	tests := []struct {
		name, limit, value, wouldBe string
		ok                          bool
	}{
		{MaxOrderValue, "order value at", "1872.50", "1872.50", true},
		{MaxOrderValue, "order value below", "1872.49", "1872.50", false},
		{MaxOrderValue, "order value above", "1872.51", "1872.50", true},
		{MaxSharesPerOrder, "shares at", "10", "10", true},
		{MaxSharesPerOrder, "shares below", "9", "10", false},
		{MaxSharesPerOrder, "shares above", "11", "10", true},
		{MaxOrdersPerDay, "orders at", "3", "3", true},
		{MaxOrdersPerDay, "orders below", "2", "3", false},
		{MaxOrdersPerDay, "orders above", "4", "3", true},
		{MaxDailyValue, "daily at", "4872.75", "4872.75", true},
		{MaxDailyValue, "daily below", "4872.74", "4872.75", false},
		{MaxDailyValue, "daily above", "4872.76", "4872.75", true},
	}
	for _, tt := range tests {
		t.Run(tt.limit, func(t *testing.T) {
			for _, own := range []bool{true, false} { // the user's own limit, or the ceiling
				sn := Snapshot{Ceilings: huge, Used: used}
				if own {
					*sn.Own.field(tt.name) = sp(tt.value)
				} else {
					*sn.Ceilings.field(tt.name) = sp(tt.value)
				}
				lines := sn.Check(Paper, qty, value)
				var got *Line
				for i := range lines {
					if lines[i].Name == tt.name {
						got = &lines[i]
					}
				}
				want := Line{Name: tt.name, Limit: tt.value, WouldBe: tt.wouldBe, OK: tt.ok}
				if got == nil || !cmp.Equal(*got, want) {
					t.Fatalf("own=%v: line %+v, want %+v", own, got, want)
				}
				err := Refusal(lines)
				var le *LimitError
				if tt.ok != (err == nil) || (!tt.ok && (!errors.As(err, &le) || le.Line != want || !errs.Is(err, errs.RiskLimitExceeded))) {
					t.Fatalf("own=%v: Refusal = %v, want refusal %v", own, err, !tt.ok)
				}
			}
		})
	}
}

// TestCheckUsesTheModesOwnDay: live usage does not count against paper.
func TestCheckUsesTheModesOwnDay(t *testing.T) {
	sn := Snapshot{Ceilings: Limits{MaxOrdersPerDay: sp("1")}, Used: map[string]Usage{Live: {Orders: 5, Value: "9"}}}
	if err := Refusal(sn.Check(Paper, 1, "1")); err != nil {
		t.Fatalf("paper refused for live usage: %v", err)
	}
	if err := Refusal(sn.Check(Live, 1, "1")); !errs.Is(err, errs.RiskLimitExceeded) {
		t.Fatalf("live: %v, want risk_limit_exceeded", err)
	}
}

func TestGate(t *testing.T) {
	tests := []struct {
		name      string
		sn        Snapshot
		exit      bool
		wantEntry errs.Code
		wantExit  errs.Code
	}{
		{"nothing", Snapshot{}, false, "", ""},
		{"paused", Snapshot{Paused: true}, false, errs.TradingPaused, ""},
		{"suspended", Snapshot{Suspended: true, SuspendedReason: "KYC"}, false, errs.UserSuspended, ""},
		{"halted", Snapshot{Halted: map[string]bool{Paper: true}, HaltReason: "feed"}, false, errs.TradingHalted, errs.TradingHalted},
		{"other mode halted", Snapshot{Halted: map[string]bool{Live: true}}, false, "", ""},
	}
	for _, tt := range tests {
		if got := errs.CodeOf(tt.sn.Gate(Paper, false)); got != tt.wantEntry {
			t.Errorf("%s: entry %q, want %q", tt.name, got, tt.wantEntry)
		}
		if got := errs.CodeOf(tt.sn.Gate(Paper, true)); got != tt.wantExit {
			t.Errorf("%s: exit %q, want %q", tt.name, got, tt.wantExit)
		}
	}
}

func TestParseLimit(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{MaxOrderValue, "5000", "5000.00"},
		{MaxOrderValue, "2500.5", "2500.50"},
		{MaxOrderValue, "0", "0.00"},
		{MaxOrderValue, "1.234", ""},
		{MaxOrderValue, "-1", ""},
		{MaxOrderValue, "1e3", ""},
		{MaxSharesPerOrder, "007", "7"},
		{MaxSharesPerOrder, "1.5", ""},
		{MaxOrdersPerDay, "", ""},
		{MaxOrdersPerDay, "9999999999", ""},
	}
	for _, tt := range tests {
		got, err := parseLimit(tt.name, tt.in)
		if (err != nil) != (tt.want == "") || got != tt.want {
			t.Errorf("parseLimit(%s, %q) = %q, %v; want %q", tt.name, tt.in, got, err, tt.want)
		}
	}
}
