package ibkrsim_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

type orderStatus struct {
	OrderStatus string `json:"order_status"`
	CumFill     string `json:"cum_fill"`
	Size        string `json:"size"`
	TotalSize   string `json:"total_size"`
	AvgPrice    string `json:"average_price"`
	OrderRef    string `json:"order_ref"`
}

func (c *client) status(id string) orderStatus {
	c.t.Helper()
	r := c.call(http.MethodGet, "/iserver/account/order/status/"+id, nil)
	mustStatus(c.t, "order status", r, http.StatusOK)
	var st orderStatus
	r.json(c.t, &st)
	return st
}

func TestOrderPlacementAndQuestions(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}})
	c := f.ready("DU1000001")
	aapl, _ := f.sim.Security("AAPL")

	// The first order of a session asks o163; confirming places it.
	r := c.call(http.MethodPost, "/iserver/account/DU1000001/orders", orderBody("DU1000001", 265598, "o-1", "MKT", "BUY", 10, "DAY", 0))
	mustStatus(t, "first order", r, http.StatusOK)
	var ans []placeAnswer
	r.json(t, &ans)
	if len(ans) != 1 || ans[0].ID == "" || !cmp.Equal(ans[0].MessageIDs, []string{"o163"}) || len(ans[0].Message) != 1 {
		t.Fatalf("first order answer %s", r.Body)
	}
	replyID := ans[0].ID
	r = c.call(http.MethodPost, "/iserver/reply/"+replyID, map[string]bool{"confirmed": true})
	mustStatus(t, "reply", r, http.StatusOK)
	ans = nil
	r.json(t, &ans)
	if len(ans) != 1 || ans[0].OrderID == "" || ans[0].OrderStatus != "Submitted" || ans[0].Encrypt != "1" {
		t.Fatalf("reply answer %s", r.Body)
	}
	first := ans[0].OrderID
	// A reply id answers once.
	mustStatus(t, "reply again", c.call(http.MethodPost, "/iserver/reply/"+replyID, map[string]bool{"confirmed": true}), http.StatusBadRequest)

	want := orderStatus{OrderStatus: "Filled", CumFill: "10.0", Size: "0.0", TotalSize: "10.0", AvgPrice: fmt.Sprint(aapl.RefPrice), OrderRef: "o-1"}
	if diff := cmp.Diff(want, c.status(first)); diff != "" {
		t.Errorf("MKT DAY status (-want +got):\n%s", diff)
	}

	// Later orders of the session ask nothing; a bare array is accepted.
	id, asked := c.place([]any{map[string]any{"conid": 265598, "cOID": "o-2", "orderType": "LMT", "price": 1.5, "side": "BUY", "quantity": 3, "tif": "GTC"}})
	if len(asked) != 0 {
		t.Errorf("second order asked %v", asked)
	}
	if st := c.status(id); st.OrderStatus != "Submitted" || st.CumFill != "0.0" {
		t.Errorf("resting LMT: %+v", st)
	}

	r = c.call(http.MethodPost, "/iserver/account/DU1000001/orders", orderBody("DU1000001", 265598, "o-1", "MKT", "BUY", 1, "DAY", 0))
	mustStatus(t, "duplicate cOID", r, http.StatusBadRequest)
	if diff := cmp.Diff(`{"error":"Order couldn't be submitted: Local order ID=o-1 is already registered."}`, string(r.Body)); diff != "" {
		t.Errorf("duplicate cOID (-want +got):\n%s", diff)
	}

	// Live orders carry the cOID as order_ref; trades list the fill.
	var live struct {
		Orders []struct {
			OrderID  int64   `json:"orderId"`
			OrderRef string  `json:"order_ref"`
			Status   string  `json:"status"`
			Filled   float64 `json:"filledQuantity"`
		} `json:"orders"`
	}
	r = c.call(http.MethodGet, "/iserver/account/orders", nil)
	mustStatus(t, "live orders", r, http.StatusOK)
	r.json(t, &live)
	type row struct {
		Ref, Status string
		Filled      float64
	}
	var got []row
	for _, o := range live.Orders {
		got = append(got, row{o.OrderRef, o.Status, o.Filled})
	}
	if diff := cmp.Diff([]row{{"o-1", "Filled", 10}, {"o-2", "Submitted", 0}}, got); diff != "" {
		t.Errorf("live orders (-want +got):\n%s", diff)
	}
	var trades []struct {
		OrderRef string  `json:"order_ref"`
		Size     float64 `json:"size"`
	}
	r = c.call(http.MethodGet, "/iserver/account/trades", nil)
	mustStatus(t, "trades", r, http.StatusOK)
	r.json(t, &trades)
	if len(trades) != 1 || trades[0].OrderRef != "o-1" || trades[0].Size != 10 {
		t.Errorf("trades %s", r.Body)
	}

	// Cancel: a working order goes, a filled one cannot.
	r = c.call(http.MethodDelete, "/iserver/account/DU1000001/order/"+id, nil)
	mustStatus(t, "cancel", r, http.StatusOK)
	var cancel struct {
		Msg     string `json:"msg"`
		Account string `json:"account"`
	}
	r.json(t, &cancel)
	if cancel.Msg != "Request was submitted" || cancel.Account != "DU1000001" {
		t.Errorf("cancel %s", r.Body)
	}
	if st := c.status(id); st.OrderStatus != "Cancelled" {
		t.Errorf("after cancel: %+v", st)
	}
	mustStatus(t, "cancel filled", c.call(http.MethodDelete, "/iserver/account/DU1000001/order/"+first, nil), http.StatusBadRequest)
	mustStatus(t, "cancel unknown", c.call(http.MethodDelete, "/iserver/account/DU1000001/order/1", nil), http.StatusNotFound)

	wantSim := []ibkrsim.SimOrder{
		{COID: "o-1", Account: "DU1000001", Conid: 265598, Ticker: "AAPL", Side: "BUY", Quantity: 10, OrderType: "MKT", TIF: "DAY", Status: "Filled", Filled: 10, AvgPrice: aapl.RefPrice},
		{COID: "o-2", Account: "DU1000001", Conid: 265598, Ticker: "AAPL", Side: "BUY", Quantity: 3, OrderType: "LMT", TIF: "GTC", Status: "Cancelled"},
	}
	if diff := cmp.Diff(wantSim, f.simOrders(), cmpopts.IgnoreFields(ibkrsim.SimOrder{}, "OrderID", "ConsumerKey", "ReceivedAt", "LimitPrice")); diff != "" {
		t.Errorf("/sim/orders (-want +got):\n%s", diff)
	}
}

func TestOrderValidation(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}})
	c := f.ready("DU1000002")
	f.register("DU1000003")
	good := func(mut func(o map[string]any)) map[string]any {
		o := map[string]any{"acctId": "DU1000002", "conid": 265598, "cOID": "v-1", "orderType": "LMT", "price": 100.0, "side": "BUY", "quantity": 5, "tif": "OPG"}
		mut(o)
		return map[string]any{"orders": []any{o}}
	}
	for _, tc := range []struct {
		name string
		acct string
		body any
		want string
	}{
		{"no conid", "DU1000002", good(func(o map[string]any) { delete(o, "conid") }), `{"error":"conid is required and must be a positive integer"}`},
		{"unknown conid", "DU1000002", good(func(o map[string]any) { o["conid"] = 7 }), `{"error":"Contract 7 is not tradable: invalid conid"}`},
		{"bad order type", "DU1000002", good(func(o map[string]any) { o["orderType"] = "STP" }), `{"error":"orderType \"STP\" is not supported"}`},
		{"bad side", "DU1000002", good(func(o map[string]any) { o["side"] = "SHORT" }), `{"error":"side must be BUY or SELL"}`},
		{"zero quantity", "DU1000002", good(func(o map[string]any) { o["quantity"] = 0 }), `{"error":"quantity must be a positive number"}`},
		{"bad tif", "DU1000002", good(func(o map[string]any) { o["tif"] = "IOC" }), `{"error":"tif \"IOC\" is not supported"}`},
		{"LMT without price", "DU1000002", good(func(o map[string]any) { delete(o, "price") }), `{"error":"price is required for LMT orders"}`},
		{"MOC with OPG", "DU1000002", good(func(o map[string]any) { o["orderType"] = "MOC" }), `{"error":"MOC orders need tif DAY"}`},
		{"acctId mismatch", "DU1000002", good(func(o map[string]any) { o["acctId"] = "DU1000003" }), `{"error":"acctId DU1000003 does not match the account in the path"}`},
		{"another consumer's account", "DU1000003", good(func(o map[string]any) { o["acctId"] = "DU1000003" }), `{"error":"Account DU1000003 is not valid for this user"}`},
		{"not JSON", "DU1000002", "orders", `{"error":"malformed JSON body"}`},
		{"empty", "DU1000002", map[string]any{"orders": []any{}}, `{"error":"orders is empty"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.call(http.MethodPost, "/iserver/account/"+tc.acct+"/orders", tc.body)
			mustStatus(t, tc.name, r, http.StatusBadRequest)
			if diff := cmp.Diff(tc.want, string(r.Body)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if n := len(f.simOrders()); n != 0 {
		t.Errorf("%d orders recorded from invalid requests", n)
	}
}

func TestQuestionChainsSuppressAndDecline(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{
		Pacing:    ibkrsim.Pacing{Disabled: true},
		Questions: ibkrsim.Questions{Rules: []ibkrsim.QuestionRule{{MessageID: "o451", MinValue: 100000}, {MessageID: "o10151", OrderType: "MKT", TIF: "OPG"}}},
	})
	c := f.ready("DU1000004")

	// Declining drops the order.
	r := c.call(http.MethodPost, "/iserver/account/DU1000004/orders", orderBody("DU1000004", 265598, "q-0", "LMT", "BUY", 1, "DAY", 1))
	var ans []placeAnswer
	r.json(t, &ans)
	mustStatus(t, "decline", c.call(http.MethodPost, "/iserver/reply/"+ans[0].ID, map[string]bool{"confirmed": false}), http.StatusBadRequest)
	if n := len(f.simOrders()); n != 0 {
		t.Fatalf("declined order recorded (%d orders)", n)
	}

	for _, tc := range []struct {
		name string
		body any
		want []string
	}{
		{"small LMT asks nothing after the first order", orderBody("DU1000004", 265598, "q-1", "LMT", "BUY", 1, "DAY", 1), nil},
		{"big order chains o451", orderBody("DU1000004", 265598, "q-2", "LMT", "BUY", 1000, "DAY", 1), []string{"o451"}},
		{"big MKT OPG chains two", orderBody("DU1000004", 265598, "q-3", "MKT", "BUY", 1000, "OPG", 0), []string{"o451", "o10151"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, asked := c.place(tc.body)
			if diff := cmp.Diff(tc.want, asked); diff != "" {
				t.Errorf("asked (-want +got):\n%s", diff)
			}
		})
	}

	// In a new session, suppressed questions are not asked; a reply_question
	// fault asks even a suppressed one.
	mustStatus(t, "re-init", c.call(http.MethodPost, "/iserver/auth/ssodh/init", map[string]bool{"publish": true, "compete": true}), http.StatusOK)
	mustStatus(t, "accounts", c.call(http.MethodGet, "/iserver/accounts", nil), http.StatusOK)
	r = c.call(http.MethodPost, "/iserver/questions/suppress", map[string][]string{"messageIds": {"o163", "o451", "o354"}})
	mustStatus(t, "suppress", r, http.StatusOK)
	if string(r.Body) != `{"status":"submitted"}` {
		t.Errorf("suppress %s", r.Body)
	}
	if _, asked := c.place(orderBody("DU1000004", 265598, "q-4", "LMT", "BUY", 1000, "DAY", 1)); len(asked) != 0 {
		t.Errorf("suppressed questions asked: %v", asked)
	}
	f.fault("reply_question", "/iserver/account/*/orders", "o354", 1)
	if _, asked := c.place(orderBody("DU1000004", 265598, "q-5", "LMT", "BUY", 1, "DAY", 1)); !cmp.Equal(asked, []string{"o354"}) {
		t.Errorf("reply_question fault asked %v, want [o354]", asked)
	}
	if _, asked := c.place(orderBody("DU1000004", 265598, "q-6", "LMT", "BUY", 1, "DAY", 1)); len(asked) != 0 {
		t.Errorf("spent fault still asks %v", asked)
	}
}

func TestAuctions(t *testing.T) {
	for _, partial := range []float64{0, 0.5} {
		t.Run(fmt.Sprintf("partial=%v", partial), func(t *testing.T) {
			f := newFixture(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}, PartialFillFraction: partial, Questions: ibkrsim.Questions{NoFirstOrderQuestion: true}})
			c := f.ready("DU1000005")
			msft, _ := f.sim.Security("MSFT")
			conid := msft.Conid
			ids := map[string]string{}
			for _, o := range []struct {
				coid, typ, side, tif string
				price                float64
			}{
				{"mkt-opg", "MKT", "BUY", "OPG", 0},
				{"lmt-opg-above", "LMT", "BUY", "OPG", msft.OpenPrice + 0.01},
				{"lmt-opg-at", "LMT", "BUY", "OPG", msft.OpenPrice},
				{"lmt-opg-below", "LMT", "BUY", "OPG", msft.OpenPrice - 0.01},
				{"sell-lmt-opg-above", "LMT", "SELL", "OPG", msft.OpenPrice + 0.01},
				{"moc", "MOC", "SELL", "DAY", 0},
				{"mkt-day", "MKT", "BUY", "DAY", 0},
			} {
				id, _ := c.place(orderBody("DU1000005", conid, o.coid, o.typ, o.side, 10, o.tif, o.price))
				ids[o.coid] = id
			}
			fullOr := func(full, part string) string {
				if partial > 0 {
					return part
				}
				return full
			}
			statuses := func() map[string]string {
				out := map[string]string{}
				for coid, id := range ids {
					st := c.status(id)
					out[coid] = st.OrderStatus + "/" + st.CumFill
				}
				return out
			}
			before := map[string]string{
				"mkt-opg": "PreSubmitted/0.0", "lmt-opg-above": "PreSubmitted/0.0", "lmt-opg-at": "PreSubmitted/0.0",
				"lmt-opg-below": "PreSubmitted/0.0", "sell-lmt-opg-above": "PreSubmitted/0.0", "moc": "PreSubmitted/0.0",
				"mkt-day": fullOr("Filled/10.0", "Submitted/5.0"),
			}
			if diff := cmp.Diff(before, statuses()); diff != "" {
				t.Errorf("before the auctions (-want +got):\n%s", diff)
			}
			mustStatus(t, "open", f.control(http.MethodPost, "/sim/auction/open", nil), http.StatusOK)
			afterOpen := map[string]string{
				"mkt-opg": fullOr("Filled/10.0", "Cancelled/5.0"), "lmt-opg-above": fullOr("Filled/10.0", "Cancelled/5.0"),
				"lmt-opg-at": fullOr("Filled/10.0", "Cancelled/5.0"), "lmt-opg-below": "Cancelled/0.0",
				"sell-lmt-opg-above": "Cancelled/0.0", "moc": "PreSubmitted/0.0", "mkt-day": before["mkt-day"],
			}
			if diff := cmp.Diff(afterOpen, statuses()); diff != "" {
				t.Errorf("after the opening auction (-want +got):\n%s", diff)
			}
			if st := c.status(ids["lmt-opg-above"]); st.AvgPrice != fmt.Sprint(msft.OpenPrice) {
				t.Errorf("OPG fill price %s, want the opening price %v", st.AvgPrice, msft.OpenPrice)
			}
			r := f.control(http.MethodPost, "/sim/auction/close", map[string]any{"prices": map[string]float64{"MSFT": 400.5}})
			mustStatus(t, "close", r, http.StatusOK)
			st := c.status(ids["moc"])
			if st.OrderStatus != fullOr("Filled", "Cancelled") || st.AvgPrice != "400.5" {
				t.Errorf("MOC after close: %+v", st)
			}
		})
	}
}

func TestReplyIDExpires(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}, SessionIdleTimeout: time.Hour})
	c := f.ready("DU1000006")
	r := c.call(http.MethodPost, "/iserver/account/DU1000006/orders", orderBody("DU1000006", 265598, "x-1", "MKT", "BUY", 1, "OPG", 0))
	var ans []placeAnswer
	r.json(t, &ans)
	if len(ans) != 1 || ans[0].ID == "" {
		t.Fatalf("no question: %s", r.Body)
	}
	f.clock.Advance(11 * time.Minute)
	mustStatus(t, "tickle", c.call(http.MethodPost, "/tickle", nil), http.StatusOK)
	r = c.call(http.MethodPost, "/iserver/reply/"+ans[0].ID, map[string]bool{"confirmed": true})
	mustStatus(t, "stale reply", r, http.StatusBadRequest)
	if want := `{"error":"Reply id ` + ans[0].ID + ` is not valid or has expired"}`; string(r.Body) != want {
		t.Errorf("stale reply: %s, want %s", r.Body, want)
	}
	if n := len(f.simOrders()); n != 0 {
		t.Errorf("stale reply placed an order (%d orders)", n)
	}
}
