package trading_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/trading"
)

// simOrder is what the tests compare of an order at the simulator.
type simOrder struct {
	COID, Side, OrderType, TIF string
	Quantity                   float64
	Limit                      *float64
}

func simOrders(list []ibkrsim.SimOrder) []simOrder {
	out := []simOrder{}
	for _, o := range list {
		out = append(out, simOrder{o.COID, o.Side, o.OrderType, o.TIF, o.Quantity, o.LimitPrice})
	}
	return out
}

func TestConfirmPlacesThePreviewedOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		mode      string
		sizeMode  string
		sizeValue string
		limit     *string
		want      trading.Preview
		wantOrder simOrder
	}{
		{name: "market on open, dollars", mode: trading.NextOpenMarket, sizeMode: trading.SizeDollars, sizeValue: "5000",
			want:      trading.Preview{Side: "BUY", OrderType: "MKT", TIF: "OPG", Quantity: 26, EstimatedValue: "4868.50"},
			wantOrder: simOrder{Side: "BUY", OrderType: "MKT", TIF: "OPG", Quantity: 26}},
		{name: "limit on open, shares", mode: trading.NextOpenLimit, sizeMode: trading.SizeShares, sizeValue: "10", limit: ptr("185.5"),
			want:      trading.Preview{Side: "BUY", OrderType: "LMT", TIF: "OPG", LimitPrice: ptr("185.5"), Quantity: 10, EstimatedValue: "1855.00"},
			wantOrder: simOrder{Side: "BUY", OrderType: "LMT", TIF: "OPG", Quantity: 10, Limit: ptr(185.5)}},
		{name: "market on close", mode: trading.SignalClose, sizeMode: trading.SizeShares, sizeValue: "3",
			want:      trading.Preview{Side: "BUY", OrderType: "MOC", TIF: "DAY", Quantity: 3, EstimatedValue: "561.75"},
			wantOrder: simOrder{Side: "BUY", OrderType: "MOC", TIF: "DAY", Quantity: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			w := newWorld(t, fastSim(), nil)
			u := w.subscriber(t, tt.sizeMode, tt.sizeValue)
			g := w.signal(t, func(n *trading.NewSignal) { n.EntryMode, n.LimitPrice = tt.mode, tt.limit })
			p, err := w.svc.Preview(ctx, u, g.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.SignalID, want.Ticker = g.ID, "AAPL"
			want.Broker = trading.BrokerInfo{Name: "Interactive Brokers", Mode: "paper", AccountIDMasked: p.Broker.AccountIDMasked}
			want.CutoffAt, want.AuctionDate = g.ExpiresAt, g.EntryDate
			want.WhatIf = p.WhatIf // TestPreviewAsksWhatIf checks it
			if diff := cmp.Diff(want, p, cmp.AllowUnexported(trading.Preview{}), cmp.FilterPath(func(p cmp.Path) bool {
				sf, ok := p.Last().(cmp.StructField)
				return ok && (sf.Name() == "refPrice" || sf.Name() == "accountID" || sf.Name() == "signal")
			}, cmp.Ignore())); diff != "" {
				t.Errorf("preview (-want +got):\n%s", diff)
			}
			c, replay, err := w.svc.Confirm(ctx, u, g.ID, "key-1", p.Side)
			if err != nil || replay {
				t.Fatalf("confirm: replay %v, err %v", replay, err)
			}
			if c.Status != trading.StatusSubmitted || c.BrokerOrderID == nil || c.Conid == nil || *c.Conid != 265598 {
				t.Errorf("confirmation = %+v, want submitted with an order id and AAPL's conid", c)
			}
			wo := tt.wantOrder
			wo.COID = c.ID
			if diff := cmp.Diff([]simOrder{wo}, simOrders(w.env.Orders(t))); diff != "" {
				t.Errorf("orders at the simulator (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfirmRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, fastSim(), nil)
	off := w.subscriber(t, trading.SizeOff, "")
	tiny := w.subscriber(t, trading.SizeDollars, "100")
	ok := w.subscriber(t, trading.SizeShares, "5")
	entry := w.signal(t, nil)
	exit := w.signal(t, func(n *trading.NewSignal) { n.Kind = "exit"; n.Ticker = "MSFT"; n.RefClose = "427.5" })
	expired := w.signal(t, func(n *trading.NewSignal) { n.ExpiresAt = time.Date(2020, 1, 2, 21, 0, 0, 0, time.UTC) })
	withdrawn := w.signal(t, nil)
	if err := w.svc.WithdrawSignal(ctx, w.admin, withdrawn.ID); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, signal string
		side               trading.Side
		wantCode           errs.Code
		wantMsg            string
	}{
		{"position size off", off, entry.ID, "BUY", errs.Invalid, "no position size is set, so no order can be placed; set one in Settings → Position size"},
		{"amount below one share", tiny, entry.ID, "BUY", errs.Invalid, "your position size of $100 buys no whole share of AAPL at 187.25; raise it in Settings → Position size"},
		{"wrong side", ok, entry.ID, "SELL", errs.Invalid, "invalid confirmation"},
		{"exit without entry", ok, exit.ID, "SELL", errs.Invalid, "nothing to sell: you have no filled entry of strategy I in MSFT"},
		{"withdrawn", ok, withdrawn.ID, "BUY", errs.Conflict, "this signal was withdrawn; it can no longer be confirmed"},
		{"expired", ok, expired.ID, "BUY", errs.PastCutoff, "confirmations of this signal closed at 2020-01-02 16:00 EST, its order's auction cut-off; it can no longer be confirmed"},
		{"unknown signal", ok, "00000000-0000-4000-8000-000000000000", "BUY", errs.NotFound, "no such signal"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := w.svc.Confirm(ctx, tt.user, tt.signal, "k"+string(rune('a'+i)), tt.side)
			e := errs.As(err)
			if e == nil {
				t.Fatalf("err = %v, want %s", err, tt.wantCode)
			}
			if diff := cmp.Diff([2]string{string(tt.wantCode), tt.wantMsg}, [2]string{string(e.Code), e.Message}); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
	if got := w.env.Orders(t); len(got) != 0 {
		t.Errorf("orders at the simulator = %d, want none", len(got))
	}
}
