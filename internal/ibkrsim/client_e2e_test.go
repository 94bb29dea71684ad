package ibkrsim_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ibkrsim/simtest"
)

// TestProductClientFlows runs the product's IBKR client against the
// simulator: Test Connection, contract lookup, an order through its reply
// question, the opening auction, status, live orders and cancel.
func TestProductClientFlows(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{Clock: time.Now, Pacing: ibkrsim.Pacing{Disabled: true}})
	k := keysOnce()
	c, creds, err := ibkrsim.Register(ibkrsim.RegisterOptions{AccountID: "DU4000001", SignatureKey: k.sig, EncryptionKey: k.enc})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sim.AddConsumer(c); err != nil {
		t.Fatal(err)
	}
	var in ibkr.CredentialsInput
	simtest.DecodeFile(t, creds, &in)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := ibkr.Options{BaseURL: f.srv.URL + "/v1/api", HTTPClient: f.srv.Client()}
	res := ibkr.TestConnection(ctx, opts, ibkr.ConnectionTest{Input: in, Mode: "paper"})
	if !res.OK || res.Session == nil {
		t.Fatalf("Test Connection failed: %+v %+v", res.Steps, res.Error)
	}
	s := res.Session

	l, err := s.USStock(ctx, "AAPL")
	if err != nil || l.Conid != 265598 {
		t.Fatalf("USStock AAPL: %+v %v", l, err)
	}
	msft, _ := f.sim.Security("MSFT")
	lm, err := s.USStock(ctx, "MSFT")
	if err != nil || lm.Conid != int64(msft.Conid) {
		t.Fatalf("USStock MSFT: %+v %v", lm, err)
	}
	placed, err := s.PlaceOrder(ctx, "DU4000001", ibkr.Order{AcctID: "DU4000001", Conid: l.Conid, COID: "e2e-1", OrderType: "MKT", Side: "BUY", Quantity: 3, TIF: "OPG"}, ibkr.ConfirmMessageIDs("o163"))
	if err != nil {
		t.Fatalf("place: %v", err)
	}
	if len(placed.Questions) != 1 {
		t.Errorf("questions %+v, want the first-order o163", placed.Questions)
	}
	if _, err := s.PlaceOrder(ctx, "DU4000001", ibkr.Order{AcctID: "DU4000001", Conid: l.Conid, COID: "e2e-1", OrderType: "MKT", Side: "BUY", Quantity: 3, TIF: "OPG"}, ibkr.ConfirmMessageIDs("o163")); err == nil {
		t.Error("duplicate cOID placed")
	}
	lmt, err := s.PlaceOrder(ctx, "DU4000001", ibkr.Order{AcctID: "DU4000001", Conid: lm.Conid, COID: "e2e-2", OrderType: "LMT", Side: "BUY", Quantity: 2, TIF: "OPG", Price: "1.00"}, nil)
	if err != nil {
		t.Fatalf("place LMT: %v", err)
	}
	mustStatus(t, "auction", f.control(http.MethodPost, "/sim/auction/open", nil), http.StatusOK)

	aapl, _ := f.sim.Security("AAPL")
	st, err := s.OrderStatus(ctx, placed.Order.OrderID)
	if err != nil || st.Status != "Filled" || string(st.CumFill) != "3.0" {
		t.Errorf("MKT OPG after the open: %+v %v (open price %v)", st, err, aapl.OpenPrice)
	}
	st, err = s.OrderStatus(ctx, lmt.Order.OrderID)
	if err != nil || st.Status != "Cancelled" {
		t.Errorf("LMT OPG below the open: %+v %v", st, err)
	}
	live, err := s.LiveOrders(ctx)
	if err != nil || len(live) != 2 {
		t.Fatalf("live orders: %+v %v", live, err)
	}
	if _, err := s.CancelOrder(ctx, "DU4000001", placed.Order.OrderID); err == nil {
		t.Error("cancelling a filled order succeeded")
	}
	if err := s.Logout(ctx); err != nil {
		t.Errorf("logout: %v", err)
	}
	if _, err := s.Tickle(ctx); err == nil {
		t.Error("tickle after logout succeeded")
	}
}
