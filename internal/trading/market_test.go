package trading_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/clocktest"
	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/market"
	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

func newYork(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(market.TimeZone)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// A signal's confirmations close at its order's auction cut-off on the
// entry date, or the next trading day's when the exchange is closed then.
func TestSignalExpiryFollowsItsCutoff(t *testing.T) {
	w := newWorld(t, fastSim(), nil)
	ny := newYork(t)
	tests := []struct {
		name, entryDate, mode string
		expires               time.Time
		want                  time.Time
		wantField             bool
	}{
		{"open on a trading day", "2026-12-03", trading.NextOpenMarket, time.Time{}, time.Date(2026, 12, 3, 9, 28, 0, 0, ny), false},
		{"limit on open", "2026-12-03", trading.NextOpenLimit, time.Time{}, time.Date(2026, 12, 3, 9, 28, 0, 0, ny), false},
		{"close on an early close", "2026-12-24", trading.SignalClose, time.Time{}, time.Date(2026, 12, 24, 12, 50, 0, 0, ny), false},
		{"entry on a holiday: the next open", "2026-12-25", trading.NextOpenMarket, time.Time{}, time.Date(2026, 12, 28, 9, 28, 0, 0, ny), false},
		{"earlier expiry kept", "2026-12-03", trading.NextOpenMarket, time.Date(2026, 12, 2, 21, 0, 0, 0, time.UTC), time.Date(2026, 12, 2, 21, 0, 0, 0, time.UTC), false},
		{"expiry after the cut-off", "2026-12-03", trading.NextOpenMarket, time.Date(2026, 12, 3, 9, 29, 0, 0, ny), time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := trading.NewSignal{Ticker: "AAPL", Strategy: "I", Kind: "entry", SignalDate: "2026-12-01", EntryDate: tt.entryDate,
				RefClose: "187.25", RSI2: "4.5", Return2D: "-0.031", EntryMode: tt.mode, ExpiresAt: tt.expires}
			if tt.mode == trading.NextOpenLimit {
				limit := "186"
				n.LimitPrice = &limit
			}
			g, err := w.svc.CreateSignal(context.Background(), w.admin, n)
			if tt.wantField {
				e := errs.As(err)
				if e == nil || len(e.Fields) != 1 || e.Fields[0].Field != "expires_at" {
					t.Fatalf("err = %v, want a problem at expires_at", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !g.ExpiresAt.Equal(tt.want) {
				t.Errorf("expires_at = %s, want %s", g.ExpiresAt.In(ny), tt.want.In(ny))
			}
		})
	}
}

// A confirm one second before the cut-off places the order; one second
// after it is refused with past_cutoff and sends nothing.
func TestConfirmAroundTheCutoff(t *testing.T) {
	ny := newYork(t)
	cutoff := time.Date(2026, 12, 3, 9, 28, 0, 0, ny)
	clock := clocktest.New(cutoff.Add(-time.Second))
	w := newWorld(t, fastSim(), func(c *trading.Config, _ *tradetest.SimBrokerOptions) { c.Now = clock.Now })
	before := w.subscriber(t, trading.SizeShares, "5")
	after := w.subscriber(t, trading.SizeShares, "5")
	g, err := w.svc.CreateSignal(context.Background(), w.admin, trading.NewSignal{Ticker: "AAPL", Strategy: "I", Kind: "entry",
		SignalDate: "2026-12-02", EntryDate: "2026-12-03", RefClose: "187.25", RSI2: "4.5", Return2D: "-0.031", EntryMode: trading.NextOpenMarket})
	if err != nil {
		t.Fatal(err)
	}
	p, err := w.svc.Preview(context.Background(), before, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !p.CutoffAt.Equal(cutoff) || p.AuctionDate != "2026-12-03" {
		t.Errorf("preview cutoff_at %s auction_date %s", p.CutoffAt, p.AuctionDate)
	}
	if c, _, err := w.svc.Confirm(context.Background(), before, g.ID, "before", "BUY"); err != nil || c.Status != trading.StatusSubmitted {
		t.Fatalf("one second before the cut-off: %+v, %v", c, err)
	}
	clock.Set(cutoff.Add(time.Second))
	_, _, err = w.svc.Confirm(context.Background(), after, g.ID, "after", "BUY")
	if e := errs.As(err); e == nil || e.Code != errs.PastCutoff {
		t.Fatalf("one second after the cut-off: %v, want past_cutoff", err)
	}
	if got := len(w.env.Orders(t)); got != 1 {
		t.Errorf("orders at the simulator = %d, want 1", got)
	}
}

// During IBKR's restart a confirm is refused with broker_maintenance and
// when it ends; nothing is sent or recorded. After it, the same key goes
// through.
func TestConfirmDuringIBKRsRestart(t *testing.T) {
	ny := newYork(t)
	clock := clocktest.New(time.Date(2026, 12, 2, 0, 30, 0, 0, ny))
	mc, err := market.New(market.Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, fastSim(), func(c *trading.Config, _ *tradetest.SimBrokerOptions) { c.Now, c.Market = clock.Now, mc })
	user := w.subscriber(t, trading.SizeShares, "5")
	g, err := w.svc.CreateSignal(context.Background(), w.admin, trading.NewSignal{Ticker: "AAPL", Strategy: "I", Kind: "entry",
		SignalDate: "2026-12-01", EntryDate: "2026-12-02", RefClose: "187.25", RSI2: "4.5", Return2D: "-0.031", EntryMode: trading.NextOpenMarket})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = w.svc.Confirm(context.Background(), user, g.ID, "k1", "BUY")
	e := errs.As(err)
	if e == nil || e.Code != errs.BrokerMaintenance || e.RetryAfter != 75*time.Minute {
		t.Fatalf("during the restart: %v (retry after %v), want broker_maintenance for 75m", err, e)
	}
	if got := len(w.env.Orders(t)); got != 0 {
		t.Errorf("orders at the simulator = %d, want none", got)
	}
	if list, _, err := w.svc.Confirmations(context.Background(), user, trading.ConfirmationFilter{}); err != nil || len(list) != 0 {
		t.Errorf("confirmations during the restart: %+v, %v", list, err)
	}
	clock.Set(time.Date(2026, 12, 2, 1, 45, 0, 0, ny))
	if c, _, err := w.svc.Confirm(context.Background(), user, g.ID, "k1", "BUY"); err != nil || c.Status != trading.StatusSubmitted {
		t.Fatalf("after the restart: %+v, %v", c, err)
	}
}

// The preview asks IBKR's what-if: commission, margin and equity, IBKR's
// refusal shown before confirming, and no what-if at all (never an error)
// when IBKR cannot answer it.
func TestPreviewAsksWhatIf(t *testing.T) {
	w := newWorld(t, fastSim(), nil)
	ctx := context.Background()
	user := w.subscriber(t, trading.SizeShares, "1000")
	g := w.signal(t, nil)

	p, err := w.svc.Preview(ctx, user, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The simulator's fixed pricing: USD 0.005 a share, 1000 × 187.25 at
	// 50 % Reg T initial margin, equity 1,000,000 less the commission.
	want := &trading.WhatIf{Commission: "5", InitialMarginChange: "93625", EquityWithLoanAfter: "999995", Warnings: []string{}}
	if diff := cmp.Diff(want, p.WhatIf); diff != "" {
		t.Errorf("what-if (-want +got):\n%s", diff)
	}

	w.env.Fault(t, ibkrsim.Fault{Path: "/iserver/account/*/orders/whatif", Kind: ibkrsim.FaultReject,
		Value: []byte(`"No trading permissions."`), Count: 1})
	p, err = w.svc.Preview(ctx, user, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.WhatIf == nil || p.WhatIf.Refusal == nil || *p.WhatIf.Refusal != "No trading permissions." {
		t.Errorf("refused what-if: %+v", p.WhatIf)
	}

	w.env.Fault(t, ibkrsim.Fault{Path: "/iserver/account/*/orders/whatif", Kind: ibkrsim.FaultStatus, Value: []byte(`500`), Count: 5})
	p, err = w.svc.Preview(ctx, user, g.ID)
	if err != nil || p.WhatIf != nil {
		t.Errorf("IBKR failing the what-if: preview %+v, %v; want a preview without what-if", p.WhatIf, err)
	}
	if got := len(w.env.Orders(t)); got != 0 {
		t.Errorf("orders at the simulator after previews = %d", got)
	}
}
