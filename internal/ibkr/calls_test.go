package ibkr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPlaceOrderReplyChain(t *testing.T) {
	order := Order{Conid: 265598, COID: "c-3", OrderType: "MOC", Side: "SELL", Quantity: 5, TIF: "DAY"}
	q := func(id, msgID string) string {
		return fmt.Sprintf(`[{"id":%q,"message":["Are you sure you want to submit this order?"],"isSuppressed":false,"messageIds":[%q]}]`, id, msgID)
	}
	t.Run("two questions confirmed", func(t *testing.T) {
		f := newFake(t)
		f.respond("POST /iserver/account/DU1234567/orders", 200, q("q1", "o163"))
		f.respond("POST /iserver/reply/q1", 200, q("q2", "o354"))
		f.respond("POST /iserver/reply/q2", 200, `[{"order_id":"1234567890","order_status":"PreSubmitted","encrypt_message":"1"}]`)
		s, _ := vectorSession(t, f)
		var seen []string
		res, err := s.PlaceOrder(context.Background(), "DU1234567", order, func(q Question) bool {
			seen = append(seen, q.MessageIDs...)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(AcceptedOrder{OrderID: "1234567890", OrderStatus: "PreSubmitted"}, res.Order); diff != "" {
			t.Errorf("order (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"o163", "o354"}, seen); diff != "" {
			t.Errorf("questions (-want +got):\n%s", diff)
		}
		reqs := f.recorded()
		var bodies []string
		for _, r := range reqs {
			bodies = append(bodies, r.Method+" "+r.Path+" "+r.Body)
		}
		want := []string{
			`POST /iserver/account/DU1234567/orders {"orders":[{"acctId":"DU1234567","conid":265598,"cOID":"c-3","orderType":"MOC","side":"SELL","quantity":5,"tif":"DAY"}]}`,
			`POST /iserver/reply/q1 {"confirmed":true}`,
			`POST /iserver/reply/q2 {"confirmed":true}`,
		}
		if diff := cmp.Diff(want, bodies); diff != "" {
			t.Errorf("requests (-want +got):\n%s", diff)
		}
	})
	t.Run("declined", func(t *testing.T) {
		f := newFake(t)
		f.respond("POST /iserver/account/DU1234567/orders", 200, q("q1", "o10151"))
		f.respond("POST /iserver/reply/q1", 200, `[{"order_id":"0","order_status":"Cancelled"}]`)
		s, _ := vectorSession(t, f)
		_, err := s.PlaceOrder(context.Background(), "DU1234567", order, ConfirmMessageIDs("o163"))
		if KindOf(err) != KindQuestionDeclined || !strings.Contains(err.Error(), "o10151") {
			t.Fatalf("err = %v", err)
		}
		if reqs := f.recorded(); len(reqs) != 2 || reqs[1].Body != `{"confirmed":false}` {
			t.Errorf("requests = %+v", reqs)
		}
	})
	t.Run("endless chain is bounded", func(t *testing.T) {
		f := newFake(t)
		f.respond("POST /iserver/account/DU1234567/orders", 200, q("q1", "o163"))
		f.respond("POST /iserver/reply/q1", 200, q("q1", "o163"))
		o, _ := vectorOptions(t, f)
		o.MaxReplyChain = 3
		s, err := ResumeSession(o, "QAVECTORA", "eb31c080cc0bd45b2f55", RealmLimitedPOA, LiveSessionToken{Value: f.v.LSTCases[0].Derived.LST})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.PlaceOrder(context.Background(), "DU1234567", order, func(Question) bool { return true })
		if KindOf(err) != KindQuestionDeclined {
			t.Fatalf("err = %v", err)
		}
		if n := len(f.recorded()); n != 4 {
			t.Errorf("%d requests, want 1 order + 3 replies", n)
		}
	})
	t.Run("invalid order is not sent", func(t *testing.T) {
		f := newFake(t)
		s, _ := vectorSession(t, f)
		bad := []Order{
			{Conid: 1, COID: "x", OrderType: "LMT", Side: "BUY", Quantity: 1, TIF: "OPG"},
			{Conid: 1, COID: "x", OrderType: "MKT", Side: "BUY", Quantity: 1, TIF: "OPG", Price: "1"},
			{Conid: 0, COID: "", OrderType: "", Side: "buy", Quantity: 0, TIF: ""},
			{Conid: 1, COID: "x", OrderType: "LMT", Side: "BUY", Quantity: 1, TIF: "OPG", Price: "-1"},
			{AcctID: "DU7", Conid: 1, COID: "x", OrderType: "MKT", Side: "BUY", Quantity: 1, TIF: "OPG"},
		}
		for _, o := range bad {
			if _, err := s.PlaceOrder(context.Background(), "DU1234567", o, nil); err == nil {
				t.Errorf("PlaceOrder(%+v) succeeded", o)
			}
		}
		if n := len(f.recorded()); n != 0 {
			t.Errorf("%d requests sent", n)
		}
	})
}

func TestTypedCallsParse(t *testing.T) {
	f := newFake(t)
	f.respond("POST /iserver/auth/ssodh/init", 200, `{"authenticated":true,"competing":false,"connected":true,"message":"","MAC":"98:F2:B3:23:BF:A0","serverInfo":{"serverName":"JifN19053","serverVersion":"Build 10.25.0p"}}`)
	f.respond("POST /iserver/auth/status", 200, `{"authenticated":true,"competing":true,"connected":true}`)
	f.respond("POST /tickle", 200, `{"session":"0123456789abcdef0123456789abcdef","ssoExpires":460311,"collission":false,"userId":123,"iserver":{"authStatus":{"authenticated":true,"competing":false,"connected":true}}}`)
	f.respond("GET /iserver/accounts", 200, `{"accounts":["DU1234567","DU7654321"],"selectedAccount":"DU1234567","isPaper":true}`)
	f.respond("GET /trsrv/stocks", 200, `{"AAPL":[{"name":"APPLE INC","assetClass":"STK","contracts":[{"conid":265598,"exchange":"NASDAQ","isUS":true},{"conid":38708077,"exchange":"MEXI","isUS":false}]},{"name":"APPLE INC-CDR","contracts":[{"conid":532640894,"exchange":"AEQLIT","isUS":false}]}]}`)
	f.respond("GET /iserver/secdef/search", 200, `[{"conid":"265598","companyHeader":"APPLE INC - NASDAQ","companyName":"APPLE INC","symbol":"AAPL","description":"NASDAQ"}]`)
	f.respond("POST /iserver/questions/suppress", 200, `{"status":"submitted"}`)
	f.respond("GET /iserver/account/order/status/1234567890", 200, `{"order_id":1234567890,"conid":"265598","order_status":"Filled","side":"BUY","cum_fill":"10","size":"10","average_price":"187.25","tif":"OPG","order_type":"MKT","account":"DU1234567"}`)
	f.respond("GET /iserver/account/orders", 200, `{"orders":[{"orderId":1234567890,"order_ref":"c-1","acct":"DU1234567","conid":265598,"ticker":"AAPL","side":"BUY","orderType":"MKT","timeInForce":"OPG","status":"Filled","filledQuantity":10,"remainingQuantity":0.0,"totalSize":"10","avgPrice":"187.25"}],"snapshot":true}`)
	f.respond("GET /iserver/account/trades", 200, `[{"execution_id":"0000e0d5.6576fd38.01.01","order_id":1234567890,"order_ref":"c-1","account":"DU1234567","conid":265598,"symbol":"AAPL","side":"B","size":10,"price":"187.25","commission":"1.00","trade_time_r":1714489561000}]`)
	f.respond("DELETE /iserver/account/DU1234567/order/1234567890", 200, `{"msg":"Request was submitted","order_id":1234567890,"conid":265598,"account":"DU1234567"}`)
	f.respond("POST /logout", 200, `{"status":true}`)
	s, _ := vectorSession(t, f)
	ctx := context.Background()
	got := map[string]any{}
	var err error
	check := func(name string, v any, e error) {
		if e != nil {
			t.Errorf("%s: %v", name, e)
		}
		got[name] = v
	}
	st, err := s.InitBrokerage(ctx)
	check("init", st, err)
	st2, err := s.AuthStatus(ctx)
	check("status", st2, err)
	tk, err := s.Tickle(ctx)
	check("tickle", tk, err)
	acc, err := s.Accounts(ctx)
	check("accounts", acc, err)
	l, err := s.USStock(ctx, "aapl")
	check("stock", l, err)
	sd, err := s.SearchSecDef(ctx, "AAPL", "STK")
	check("secdef", sd, err)
	check("suppress", nil, s.SuppressQuestions(ctx, "o163", "o354"))
	os, err := s.OrderStatus(ctx, "1234567890")
	check("order status", os, err)
	lo, err := s.LiveOrders(ctx)
	check("live orders", lo, err)
	tr, err := s.Trades(ctx, 30)
	check("trades", tr, err)
	cr, err := s.CancelOrder(ctx, "DU1234567", "1234567890")
	check("cancel", cr, err)
	check("logout", nil, s.Logout(ctx))
	want := map[string]any{
		"init":     AuthStatus{Authenticated: true, Connected: true},
		"status":   AuthStatus{Authenticated: true, Connected: true, Competing: true},
		"tickle":   TickleResult{Session: "0123456789abcdef0123456789abcdef", AuthStatus: AuthStatus{Authenticated: true, Connected: true}, Present: true},
		"accounts": AccountList{Accounts: []string{"DU1234567", "DU7654321"}, SelectedAccount: "DU1234567", IsPaper: true},
		"stock":    Listing{Symbol: "AAPL", Name: "APPLE INC", Conid: 265598, Exchange: "NASDAQ"},
		"secdef":   []SecDef{{Conid: 265598, Symbol: "AAPL", CompanyName: "APPLE INC", Description: "NASDAQ"}},
		"suppress": nil,
		"order status": OrderStatus{OrderID: "1234567890", Conid: 265598, Status: "Filled", Side: "BUY", OrderType: "MKT", TIF: "OPG",
			CumFill: "10", TotalSize: "10", AvgPrice: "187.25", Account: "DU1234567"},
		"live orders": []LiveOrder{{OrderID: "1234567890", OrderRef: "c-1", Account: "DU1234567", Conid: 265598, Ticker: "AAPL", Side: "BUY",
			OrderType: "MKT", TIF: "OPG", Status: "Filled", FilledQuantity: "10", RemainingQuantity: "0.0", TotalSize: "10", AvgPrice: "187.25"}},
		"trades": []Trade{{ExecutionID: "0000e0d5.6576fd38.01.01", OrderID: "1234567890", OrderRef: "c-1", Account: "DU1234567", Conid: 265598,
			Symbol: "AAPL", Side: "B", Size: "10", Price: "187.25", Commission: "1.00", TradeTimeMS: 1714489561000}},
		"cancel": CancelResult{Message: "Request was submitted", OrderID: "1234567890", Conid: 265598, Account: "DU1234567"},
		"logout": nil,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("typed calls (-want +got):\n%s", diff)
	}
	// The wire: query folded into the signature (checked by the fake),
	// sent encoded, JSON bodies as JSON.
	reqs := f.recorded()
	wire := map[string]string{}
	for _, r := range reqs {
		wire[r.Method+" "+r.Path] = r.Query + "|" + r.ContentType + "|" + r.Body
	}
	for k, want := range map[string]string{
		"GET /trsrv/stocks":                "symbols=AAPL||",
		"GET /iserver/secdef/search":       "secType=STK&symbol=AAPL||",
		"POST /iserver/auth/ssodh/init":    `|application/json|{"compete":true,"publish":true}`,
		"POST /iserver/questions/suppress": `|application/json|{"messageIds":["o163","o354"]}`,
		"POST /tickle":                     "||",
		"GET /iserver/account/trades":      "days=7||",
	} {
		if wire[k] != want {
			t.Errorf("%s sent %q, want %q", k, wire[k], want)
		}
	}
}

func TestStocksListingChoice(t *testing.T) {
	tests := []struct {
		name, body string
		want       error
	}{
		{"none US", `{"SHOP":[{"name":"SHOPIFY","assetClass":"STK","contracts":[{"conid":1,"exchange":"TSE","isUS":false}]}]}`, ErrNoUSListing},
		{"unknown symbol", `{"SHOP":[]}`, ErrNoUSListing},
		{"ambiguous", `{"SHOP":[{"name":"SHOPIFY A","assetClass":"STK","contracts":[{"conid":1,"exchange":"NYSE","isUS":true}]},{"name":"SHOPIFY B","assetClass":"STK","contracts":[{"conid":2,"exchange":"NASDAQ","isUS":true}]}]}`, ErrAmbiguousListing},
		{"US listing of a non-stock ignored", `{"SHOP":[{"name":"SHOP ETF","assetClass":"FUND","contracts":[{"conid":3,"exchange":"ARCA","isUS":true}]}]}`, ErrNoUSListing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.respond("GET /trsrv/stocks", 200, tc.body)
			s, _ := vectorSession(t, f)
			_, err := s.USStock(context.Background(), "SHOP")
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
