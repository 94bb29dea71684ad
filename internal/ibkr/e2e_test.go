package ibkr_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ibkrsim/simtest"
)

// These tests run the client against the real simulator over real HTTP:
// no part of the client is replaced, and the simulator shares no code with it.

// simEnv is one simulator with one registered consumer.
type simEnv struct {
	t    *testing.T
	sim  *ibkrsim.Server
	srv  *httptest.Server
	in   ibkr.CredentialsInput // the user's credentials FILE, as the simulator wrote it
	opts ibkr.Options
}

// newSimEnv starts a simulator and registers a consumer for DU1234567 via
// POST /sim/consumers. The RSA keys are the vectors' test keys, because
// generating RSA-2048 keys per test is slow.
func newSimEnv(t *testing.T, cfg ibkrsim.Config) *simEnv {
	t.Helper()
	sim := ibkrsim.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cons, in := vectorConsumer(t)
	e := &simEnv{t: t, sim: sim, srv: srv, in: in, opts: ibkr.Options{BaseURL: srv.URL + "/v1/api", HTTPClient: srv.Client()}}
	e.control("POST", "/sim/consumers", cons, http.StatusCreated)
	return e
}

// vectorConsumer registers a consumer for DU1234567 with the vectors' test
// keys and returns the simulator's side and the user's side, as the
// credentials FILE the simulator writes (it travels as one).
func vectorConsumer(tb testing.TB) (ibkrsim.Consumer, ibkr.CredentialsInput) {
	tb.Helper()
	var v struct {
		Credentials ibkr.CredentialsInput `json:"credentials"`
	}
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		tb.Fatal(err)
	}
	sigKey, err := ibkr.ParseRSAPrivateKey(v.Credentials.SignaturePrivateKeyPEM)
	if err != nil {
		tb.Fatal(err)
	}
	encKey, err := ibkr.ParseRSAPrivateKey(v.Credentials.EncryptionPrivateKeyPEM)
	if err != nil {
		tb.Fatal(err)
	}
	cons, user, err := ibkrsim.Register(ibkrsim.RegisterOptions{AccountID: "DU1234567", SignatureKey: sigKey, EncryptionKey: encKey})
	if err != nil {
		tb.Fatal(err)
	}
	var in ibkr.CredentialsInput
	simtest.DecodeFile(tb, user, &in)
	return cons, in
}

// control calls the simulator's control API.
func (e *simEnv) control(method, path string, body any, wantStatus int) []byte {
	e.t.Helper()
	resp, out := simtest.Control(e.t, e.srv, method, path, body)
	if resp.StatusCode != wantStatus {
		e.t.Fatalf("%s %s = %d %s", method, path, resp.StatusCode, out)
	}
	return out
}

// fault injects one fault via POST /sim/faults.
func (e *simEnv) fault(path, kind string, value any, count int) {
	e.t.Helper()
	f := map[string]any{"path": path, "kind": kind, "count": count}
	if value != nil {
		f["value"] = value
	}
	e.control("POST", "/sim/faults", f, http.StatusCreated)
}

// connected runs Test Connection and returns its session: handshake,
// brokerage session and accounts done.
func (e *simEnv) connected(ctx context.Context) *ibkr.Session {
	e.t.Helper()
	res := ibkr.TestConnection(ctx, e.opts, ibkr.ConnectionTest{Input: e.in, Mode: "paper"})
	if !res.OK {
		var b strings.Builder
		ibkr.FormatTestResult(&b, res)
		e.t.Fatalf("Test Connection failed:\n%s", b.String())
	}
	return res.Session
}

// newConnectedSimEnv is a simulator as IBKR behaves by default, with a
// session that passed Test Connection.
func newConnectedSimEnv(t *testing.T) (*simEnv, *ibkr.Session) {
	t.Helper()
	e := newSimEnv(t, ibkrsim.Config{})
	return e, e.connected(context.Background())
}

func creds(t *testing.T, in ibkr.CredentialsInput) *ibkr.Credentials {
	t.Helper()
	c, err := ibkr.ParseCredentials(in)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func confirmAll(ibkr.Question) bool { return true }

func TestE2EOrderPath(t *testing.T) {
	e, s := newConnectedSimEnv(t)
	ctx := context.Background()
	if time.Until(s.Expires()) < 23*time.Hour {
		t.Errorf("LST expires %s", s.Expires())
	}

	// Conid lookup, both ways.
	l, err := s.USStock(ctx, "AAPL")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ibkr.Listing{Symbol: "AAPL", Name: "APPLE INC", Conid: 265598, Exchange: "NASDAQ"}, l); diff != "" {
		t.Errorf("USStock (-want +got):\n%s", diff)
	}
	sd, err := s.SearchSecDef(ctx, "AAPL", "STK")
	if err != nil || len(sd) == 0 || sd[0].Conid != 265598 {
		t.Fatalf("SearchSecDef = %+v, %v", sd, err)
	}

	// The first order of a brokerage session asks o163: answered by policy.
	var asked []string
	order := ibkr.Order{Conid: l.Conid, COID: "e2e-buy-1", OrderType: "MKT", Side: "BUY", Quantity: 10, TIF: "OPG"}
	placed, err := s.PlaceOrder(ctx, "DU1234567", order, func(q ibkr.Question) bool {
		asked = append(asked, q.MessageIDs...)
		return true
	})
	if err != nil {
		t.Fatalf("PlaceOrder: %v", err)
	}
	if diff := cmp.Diff([]string{"o163"}, asked); diff != "" {
		t.Errorf("questions (-want +got):\n%s", diff)
	}
	if placed.Order.OrderID == "" {
		t.Fatal("no order id")
	}
	st, err := s.OrderStatus(ctx, placed.Order.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "PreSubmitted" && st.Status != "Submitted" {
		t.Errorf("status = %q", st.Status)
	}
	live, err := s.LiveOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 1 || live[0].OrderRef != "e2e-buy-1" || live[0].OrderID != placed.Order.OrderID {
		t.Errorf("live orders = %+v", live)
	}

	// A second order with the same cOID: the order already exists.
	_, err = s.PlaceOrder(ctx, "DU1234567", order, confirmAll)
	if ibkr.KindOf(err) != ibkr.KindDuplicateOrder {
		t.Fatalf("duplicate cOID: %v", err)
	}

	// The opening auction fills the MKT OPG order.
	e.control("POST", "/sim/auction/open", nil, http.StatusOK)
	st, err = s.OrderStatus(ctx, placed.Order.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "Filled" || st.CumFill != "10.0" || st.AvgPrice == "" || st.Side != "B" {
		t.Errorf("after the auction: %+v", st)
	}
	trades, err := s.Trades(ctx, ibkr.MaxTradeDays)
	if err != nil {
		t.Fatal(err)
	}
	if len(trades) != 1 || trades[0].OrderRef != "e2e-buy-1" || trades[0].Conid != 265598 {
		t.Errorf("trades = %+v", trades)
	}

	// A limit order, then its cancel.
	lmt := ibkr.Order{Conid: l.Conid, COID: "e2e-lmt-1", OrderType: "LMT", Price: "150.5", Side: "BUY", Quantity: 2, TIF: "OPG"}
	placed2, err := s.PlaceOrder(ctx, "DU1234567", lmt, confirmAll)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := s.CancelOrder(ctx, "DU1234567", placed2.Order.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	if cr.Message != "Request was submitted" || cr.OrderID != placed2.Order.OrderID || cr.Conid != 265598 {
		t.Errorf("cancel = %+v", cr)
	}
	st, err = s.OrderStatus(ctx, placed2.Order.OrderID)
	if err != nil || st.Status != "Cancelled" {
		t.Errorf("after cancel: %+v, %v", st, err)
	}
	// Cancelling it again is refused with IBKR's text.
	_, err = s.CancelOrder(ctx, "DU1234567", placed2.Order.OrderID)
	if ibkr.KindOf(err) != ibkr.KindOrderRejected {
		t.Errorf("second cancel: %v", err)
	}

	// What the simulator received.
	var got []struct {
		COID      string   `json:"cOID"`
		OrderType string   `json:"order_type"`
		TIF       string   `json:"tif"`
		Quantity  float64  `json:"quantity"`
		Limit     *float64 `json:"limit_price"`
	}
	if err := json.Unmarshal(e.control("GET", "/sim/orders", nil, http.StatusOK), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].COID != "e2e-buy-1" || got[1].Limit == nil || *got[1].Limit != 150.5 {
		t.Errorf("sim orders = %+v", got)
	}

	if _, err := s.Tickle(ctx); err != nil {
		t.Errorf("Tickle: %v", err)
	}
	if err := s.Logout(ctx); err != nil {
		t.Errorf("Logout: %v", err)
	}
	if _, err := s.Accounts(ctx); ibkr.KindOf(err) == "" {
		t.Errorf("a call after logout succeeded")
	}
}

func TestE2ESessionStates(t *testing.T) {
	e := newSimEnv(t, ibkrsim.Config{})
	ctx := context.Background()
	c := creds(t, e.in)
	s, err := ibkr.Handshake(ctx, e.opts, c)
	if err != nil {
		t.Fatal(err)
	}
	// /iserver before ssodh/init: no bridge.
	if _, err := s.Accounts(ctx); ibkr.KindOf(err) != ibkr.KindNoBrokerageSession {
		t.Fatalf("accounts before init: %v", err)
	}
	if _, err := s.Tickle(ctx); ibkr.KindOf(err) != ibkr.KindNoBrokerageSession {
		t.Errorf("tickle before init: %v", err)
	}
	if _, err := s.InitBrokerage(ctx); err != nil {
		t.Fatal(err)
	}
	// An order before /iserver/accounts.
	order := ibkr.Order{Conid: 265598, COID: "e2e-early", OrderType: "MOC", Side: "BUY", Quantity: 1, TIF: "DAY"}
	if _, err := s.PlaceOrder(ctx, "DU1234567", order, confirmAll); ibkr.KindOf(err) != ibkr.KindAccountsNotQueried {
		t.Fatalf("order before accounts: %v", err)
	}
	acc, err := s.Accounts(ctx)
	if err != nil || !acc.Has("DU1234567") || !acc.IsPaper {
		t.Fatalf("Accounts = %+v, %v", acc, err)
	}
	// Another account, and a contract that does not exist.
	other := order
	other.COID = "e2e-other"
	if _, err := s.PlaceOrder(ctx, "DU7777777", other, confirmAll); ibkr.KindOf(err) != ibkr.KindAccountNotFound {
		t.Errorf("order for another account: %v", err)
	}
	bad := order
	bad.COID, bad.Conid = "e2e-bad", 1
	var ie *ibkr.Error
	if _, err := s.PlaceOrder(ctx, "DU1234567", bad, confirmAll); !errors.As(err, &ie) || ie.Kind != ibkr.KindOrderRejected || !strings.Contains(ie.Text, "not tradable") {
		t.Errorf("order for an unknown conid: %v", err)
	}
	// Another login takes the brokerage session.
	e.fault("/iserver/auth/status", "competing", nil, 1)
	st, err := s.AuthStatus(ctx)
	if err != nil || !st.Competing || st.Healthy() {
		t.Errorf("AuthStatus after competing = %+v, %v", st, err)
	}
}

// TestE2ETestConnection checks the user-facing steps against the simulator.
func TestE2ETestConnection(t *testing.T) {
	e := newSimEnv(t, ibkrsim.Config{})
	other, err := ibkr.ParseRSAPrivateKey(e.in.EncryptionPrivateKeyPEM)
	if err != nil || other == nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		modify   func(*ibkr.CredentialsInput)
		mode     string
		fault    func()
		wantStep string // the failing step, "" for success
		wantMsg  string
		wantCode string
	}{
		{"ok", nil, "paper", nil, "", "", ""},
		{"consumer not recognized", func(in *ibkr.CredentialsInput) { in.ConsumerKey = "NOTACTIVE" }, "", nil,
			ibkr.StepLiveSessionToken, "Consumer key not recognized", "broker_consumer_not_recognized"},
		{"invalid signature", func(in *ibkr.CredentialsInput) {
			// The encryption key is a valid RSA key, but not the one IBKR has.
			in.SignaturePrivateKeyPEM = in.EncryptionPrivateKeyPEM
		}, "", nil, ibkr.StepLiveSessionToken, "OAuth handshake failed — invalid signature", "broker_invalid_signature"},
		{"account not found", func(in *ibkr.CredentialsInput) { in.AccountID = "DU7777777" }, "paper", nil,
			ibkr.StepAccounts, "Account not found", "broker_account_not_found"},
		{"live mode with a paper account", nil, "live", nil,
			ibkr.StepAccounts, "Paper account under the live connection", "broker_account_not_found"},
		{"brokerage session fails", nil, "", func() { e.fault("/iserver/auth/ssodh/init", "status", 500, 1) },
			ibkr.StepBrokerageSession, "Brokerage session could not be opened", "broker_not_connected"},
		{"damaged secret", func(in *ibkr.CredentialsInput) { in.AccessTokenSecret = in.AccessTokenSecret[4:] }, "", nil,
			ibkr.StepCredentials, "The credentials are incomplete or invalid", "invalid_argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := e.in
			if tc.modify != nil {
				tc.modify(&in)
			}
			if tc.fault != nil {
				tc.fault()
			}
			res := ibkr.TestConnection(context.Background(), e.opts, ibkr.ConnectionTest{Input: in, Mode: tc.mode})
			var out strings.Builder
			ibkr.FormatTestResult(&out, res)
			if tc.wantStep == "" {
				if !res.OK || len(res.Steps) != 5 || res.Steps[4].Name != ibkr.StepTradingPermissions {
					t.Fatalf("want success:\n%s", out.String())
				}
				return
			}
			last := res.Steps[len(res.Steps)-1]
			got := fmt.Sprintf("%s|%v|%s|%s", last.Name, last.OK, last.Message, res.Error.Code)
			want := fmt.Sprintf("%s|false|%s|%s", tc.wantStep, tc.wantMsg, tc.wantCode)
			if got != want || res.OK || last.Hint == "" {
				t.Errorf("got  %s\nwant %s\n%s", got, want, out.String())
			}
			if tc.name == "damaged secret" && !strings.Contains(last.Hint, "access_token_secret: the access token secret decodes to 253 bytes, but one block of the 2048-bit encryption key is 256 bytes — likely a copy error (part of the secret missing or extra text pasted)") {
				t.Errorf("the hint does not name the copy error:\n%s", out.String())
			}
		})
	}
}
