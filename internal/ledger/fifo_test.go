package ledger

import (
	"math/big"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/market"
)

func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic(s)
	}
	return r
}

// tf builds a fill: side, quantity, price, commission, minutes after a
// fixed start, confirmation id and strategy ("" for both: external).
func tf(id, side, qty, price, comm string, minute int, conf, strategy string) fill {
	return fill{executionID: id, confirmationID: conf, at: time.Date(2026, 11, 23, 14, 30+minute, 0, 0, time.UTC), mode: "paper",
		ticker: "AAPL", strategy: strategy, side: side, qty: rat(qty), price: rat(price), commission: rat(comm)}
}

func TestRoundTripsFIFO(t *testing.T) {
	type trip struct {
		Entry, Exit, Qty, PnL, Comm string
	}
	tests := []struct {
		name   string
		fills  []fill
		want   []trip
		closed []string
	}{
		{
			name: "one entry, one exit: (exit - entry) x qty - both commissions",
			fills: []fill{
				tf("b1", "BUY", "10", "190.50", "1", 0, "E1", "I"),
				tf("s1", "SELL", "10", "195.25", "1", 400, "X1", "I"),
			},
			want:   []trip{{"E1", "X1", "10", "45.50", "2.00"}},
			closed: []string{"E1"},
		},
		{
			name: "two exits of one entry split its commission by quantity",
			fills: []fill{
				tf("b1", "BUY", "300", "100", "1.50", 0, "E1", "I"),
				tf("s1", "SELL", "100", "110", "1", 10, "X1", "I"),
				tf("s2", "SELL", "200", "90", "1", 20, "X2", "I"),
			},
			want: []trip{
				{"E1", "X1", "100", "998.50", "1.50"},   // 1000 - 0.50 - 1
				{"E1", "X2", "200", "-2002.00", "2.00"}, // -2000 - 1.00 - 1
			},
			closed: []string{"E1"},
		},
		{
			name: "partial fills of the entry across two auctions, one exit closing both lots",
			fills: []fill{
				tf("b1", "BUY", "5", "100", "1", 0, "E1", "I"),
				tf("b2", "BUY", "5", "102", "1", 390, "E1", "I"),
				tf("s1", "SELL", "10", "105", "1.20", 400, "X1", "I"),
			},
			want: []trip{
				{"E1", "X1", "5", "23.40", "1.60"}, // 25 - 1 - 0.60
				{"E1", "X1", "5", "13.40", "1.60"}, // 15 - 1 - 0.60
			},
			closed: []string{"E1"},
		},
		{
			name: "a partial exit leaves the entry open",
			fills: []fill{
				tf("b1", "BUY", "10", "50", "1", 0, "E1", "I"),
				tf("s1", "SELL", "4", "55", "1", 10, "X1", "I"),
			},
			want: []trip{{"E1", "X1", "4", "18.60", "1.40"}},
		},
		{
			name: "first in, first out across two entries of a strategy",
			fills: []fill{
				tf("b1", "BUY", "10", "10", "0", 0, "E1", "II"),
				tf("b2", "BUY", "10", "20", "0", 1, "E2", "II"),
				tf("s1", "SELL", "15", "30", "0", 2, "X1", "II"),
			},
			want: []trip{
				{"E1", "X1", "10", "200.00", "0.00"},
				{"E2", "X1", "5", "50.00", "0.00"},
			},
			closed: []string{"E1"},
		},
		{
			name: "strategies and external executions are separate queues",
			fills: []fill{
				tf("b1", "BUY", "10", "10", "0", 0, "E1", "I"),
				tf("b2", "BUY", "10", "20", "0", 1, "", ""),
				tf("s1", "SELL", "10", "25", "0", 2, "X1", "I"),
				tf("s2", "SELL", "10", "15", "0", 3, "", ""),
				tf("s3", "SELL", "10", "15", "0", 4, "X3", "III"), // nothing of III bought
			},
			want: []trip{
				{"E1", "X1", "10", "150.00", "0.00"},
				{"", "", "10", "-50.00", "0.00"},
			},
			closed: []string{"E1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trips, closed := roundTrips(tt.fills)
			var got []trip
			for _, r := range trips {
				got = append(got, trip{r.EntryConfirmationID, r.ExitConfirmationID, r.Quantity.FloatString(0), cents(r.PnL), cents(r.Commissions)})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("round trips (-want +got):\n%s", diff)
			}
			var gotClosed []string
			for id := range closed {
				gotClosed = append(gotClosed, id)
			}
			if diff := cmp.Diff(tt.closed, gotClosed); diff != "" {
				t.Errorf("closed entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGroup(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	fills := []fill{
		tf("b1", "BUY", "10", "100", "1", 0, "E1", "II"),
		tf("s1", "SELL", "5", "110", "1", 10, "X1", "II"),
		// 21:00 New York on the 23rd is the 24th in UTC: days are exchange days.
		{executionID: "s2", confirmationID: "X2", at: time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC), mode: "paper", ticker: "AAPL",
			strategy: "II", side: "SELL", qty: rat("5"), price: rat("90"), commission: rat("1")},
		tf("b3", "BUY", "1", "10", "0.333", 0, "", ""),
		tf("s3", "SELL", "1", "10", "0.333", 1, "", ""),
	}
	trips, _ := roundTrips(fills)
	for _, tt := range []struct {
		f    PnLFilter
		want []PnLRow
	}{
		// II: (110-100)x5 - 0.50 - 1 = 48.50 and (90-100)x5 - 0.50 - 1 = -51.50;
		// external: -0.333 - 0.333.
		{PnLFilter{Group: ByDay}, []PnLRow{{Key: "2026-11-23", RealizedPnL: "-3.67", Commissions: "3.67", Trades: 3}}},
		{PnLFilter{Group: ByDay, To: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)}, []PnLRow{}},
		{PnLFilter{Group: ByTicker, Mode: "paper"}, []PnLRow{{Key: "AAPL", RealizedPnL: "-3.67", Commissions: "3.67", Trades: 3}}},
		{PnLFilter{Group: ByStrategy}, []PnLRow{
			{Key: "II", RealizedPnL: "-3.00", Commissions: "3.00", Trades: 2},
			{Key: ExternalStrategy, RealizedPnL: "-0.67", Commissions: "0.67", Trades: 1}}},
		{PnLFilter{Group: ByMonth, Mode: "live"}, []PnLRow{}},
		{PnLFilter{Group: ByTicker, From: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)}, []PnLRow{}},
	} {
		got := group(trips, tt.f, ny)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("group %+v (-want +got):\n%s", tt.f, diff)
		}
	}
}

func TestAuctionSchedule(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	s := AuctionSchedule{Market: market.Default(), After: 3 * time.Minute}
	for _, tt := range []struct{ now, want string }{
		{"2026-11-23 08:00", "2026-11-23 09:33"}, // Monday: after the open
		{"2026-11-23 09:33", "2026-11-23 16:03"}, // strictly after
		{"2026-11-23 17:00", "2026-11-24 09:33"},
		{"2026-11-25 16:30", "2026-11-27 09:33"}, // Thanksgiving
		{"2026-11-27 10:00", "2026-11-27 13:03"}, // its early close
		{"2026-11-27 14:00", "2026-11-30 09:33"}, // the weekend
	} {
		now, _ := time.ParseInLocation("2006-01-02 15:04", tt.now, ny)
		if got := s.Next(now).In(ny).Format("2006-01-02 15:04"); got != tt.want {
			t.Errorf("Next(%s) = %s, want %s", tt.now, got, tt.want)
		}
	}
}
