package ibkr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// A what-if previews an order at the simulator without placing it: the
// commission, the margin and equity it would change, IBKR's warnings, and
// IBKR's refusal when the account may not trade.
func TestE2EWhatIf(t *testing.T) {
	e, s := newConnectedSimEnv(t)
	ctx := context.Background()
	order := ibkr.Order{Conid: 265598, OrderType: "LMT", Side: "BUY", Quantity: 1000, TIF: "OPG", Price: "187.25"}

	got, err := s.WhatIf(ctx, "DU1234567", order)
	if err != nil {
		t.Fatal(err)
	}
	value := 1000 * 187.25
	want := ibkr.WhatIf{
		Commission:          fmt.Sprintf("%g", ibkrsim.WhatIfCommission(1000, value)),
		InitialMarginChange: "93625",
		EquityWithLoanAfter: "999995",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("WhatIf (-want +got):\n%s", diff)
	}

	// Nothing was placed.
	if live, err := s.LiveOrders(ctx); err != nil || len(live) != 0 {
		t.Errorf("live orders after a what-if: %+v, %v", live, err)
	}

	e.fault("/iserver/account/DU1234567/orders/whatif", "warn", "21/You are trying to submit an order without having market data for this instrument.", 1)
	got, err = s.WhatIf(ctx, "DU1234567", order)
	if err != nil || len(got.Warnings) != 1 || got.Warnings[0] != "You are trying to submit an order without having market data for this instrument." {
		t.Errorf("warning: %+v, %v", got, err)
	}

	e.fault("/iserver/account/DU1234567/orders/whatif", "reject", "No trading permissions.", 1)
	got, err = s.WhatIf(ctx, "DU1234567", order)
	if err != nil || got.Refusal != "No trading permissions." || got.Commission != "" {
		t.Errorf("refusal: %+v, %v", got, err)
	}

	if _, err := s.WhatIf(ctx, "DU1234567", ibkr.Order{Conid: 265598, Side: "BUY"}); err == nil {
		t.Error("a what-if without a quantity was sent")
	}
}

// The simulator's "reject" fault refuses an order with IBKR's text, and
// nothing is placed.
func TestE2EOrderRejectedWithIBKRsText(t *testing.T) {
	e, s := newConnectedSimEnv(t)
	ctx := context.Background()
	text := "Your account has insufficient funds to cover this order."
	e.fault("/iserver/account/DU1234567/orders", "reject", text, 1)
	order := ibkr.Order{Conid: 265598, COID: "rejected-1", OrderType: "MKT", Side: "BUY", Quantity: 10, TIF: "OPG"}
	_, err := s.PlaceOrder(ctx, "DU1234567", order, confirmAll)
	var ie *ibkr.Error
	if ibkr.KindOf(err) != ibkr.KindOrderRejected || !errors.As(err, &ie) || ie.Text != text {
		t.Fatalf("PlaceOrder with a rejection: %v", err)
	}
	if live, err := s.LiveOrders(ctx); err != nil || len(live) != 0 {
		t.Errorf("a rejected order is live: %+v, %v", live, err)
	}
	// The fault struck once: the same cOID is then accepted.
	if _, err := s.PlaceOrder(ctx, "DU1234567", order, confirmAll); err != nil {
		t.Errorf("after the rejection: %v", err)
	}
}
