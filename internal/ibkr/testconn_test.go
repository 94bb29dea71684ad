package ibkr

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTestConnection(t *testing.T) {
	type stepView struct {
		Name, Message string
		OK            bool
	}
	// passed lists the first n steps as they read when they pass, then
	// last: the step that fails, or the one after them all.
	passed := func(n int, last ...stepView) []stepView {
		ok := []stepView{
			{StepCredentials, "The credentials are complete and well-formed", true},
			{StepLiveSessionToken, "Live session token obtained and validated; it expires 2024-05-01T15:04:20Z", true},
			{StepBrokerageSession, "Brokerage session open", true},
			{StepAccounts, "Account DU•••4567 found (paper)", true},
		}
		return append(ok[:n:n], last...)
	}
	okInit := `{"authenticated":true,"competing":false,"connected":true}`
	okAccounts := `{"accounts":["DU1234567"],"selectedAccount":"DU1234567","isPaper":true}`
	tests := []struct {
		name     string
		modify   func(*CredentialsInput)
		mode     string
		lst      [2]any // status, body; nil = vector answer
		init     string
		accounts string
		want     []stepView
		wantCode string
		wantHint string
	}{
		{"all pass", nil, "paper", [2]any{}, okInit, okAccounts,
			passed(4, stepView{StepTradingPermissions, "IBKR would accept an order for AAPL (a what-if, nothing placed)", true}), "", ""},
		{"no trading permission", nil, "paper", [2]any{}, okInit, okAccounts,
			passed(4, stepView{StepTradingPermissions, "IBKR would refuse orders from this account", false}), "broker_no_permission", "IBKR said: No trading permissions. Orders through the Web API need an IBKR Pro account"},
		{"bad credentials stop at once", func(in *CredentialsInput) { in.ConsumerKey = "x" }, "", [2]any{}, okInit, okAccounts,
			passed(0, stepView{StepCredentials, "The credentials are incomplete or invalid", false}), "invalid_argument", "consumer_key: the consumer key has 1 characters; IBKR consumer keys are exactly 9 letters A-Z"},
		{"paper account under live", nil, "live", [2]any{}, okInit, okAccounts,
			passed(3, stepView{StepAccounts, "Paper account under the live connection", false}), "broker_account_not_found", "DU•••4567 is a paper trading account (DU…). Save these credentials under Paper"},
		{"consumer not recognized", nil, "paper", [2]any{401, `{"error":"id: 1, error: invalid consumer","statusCode":401}`}, okInit, okAccounts,
			passed(1, stepView{StepLiveSessionToken, "Consumer key not recognized", false}), "broker_consumer_not_recognized", "weekend restart"},
		{"invalid signature", nil, "paper", [2]any{401, `{"error":"id: 1, error: invalid signature","statusCode":401}`}, okInit, okAccounts,
			passed(1, stepView{StepLiveSessionToken, "OAuth handshake failed — invalid signature", false}), "broker_invalid_signature", "the signature key is the private key whose public key you uploaded for this consumer key, that the access token and its secret are the current ones, and that the DH parameters are the ones you uploaded. IBKR said: id: 1, error: invalid signature"},
		{"clock skew", nil, "paper", [2]any{401, `{"error":"id: 2, error: invalid timestamp","statusCode":401}`}, okInit, okAccounts,
			passed(1, stepView{StepLiveSessionToken, "OAuth handshake failed — invalid signature", false}), "broker_invalid_signature", "check this server's clock"},
		{"lst does not validate", nil, "paper", [2]any{200, strings.Replace(`{"diffie_hellman_response":"B","live_session_token_signature":"0000000000000000000000000000000000000000","live_session_token_expiration":1714575860000}`, "B", "abcdef", 1)}, okInit, okAccounts,
			passed(1, stepView{StepLiveSessionToken, "OAuth handshake failed — live session token did not validate", false}), "broker_invalid_signature", "DH parameters"},
		{"brokerage session competing", nil, "paper", [2]any{}, `{"authenticated":true,"competing":true,"connected":true}`, okAccounts,
			passed(2, stepView{StepBrokerageSession, "Another IBKR login holds the brokerage session", false}), "broker_not_connected", "TWS"},
		{"account not found", nil, "paper", [2]any{}, okInit, `{"accounts":["DU7654321"],"isPaper":true}`,
			passed(3, stepView{StepAccounts, "Account not found", false}), "broker_account_not_found", "IBKR does not list DU•••4567 for this login; it lists DU•••4321. Check the account id"},
		{"IBKR says live login for paper mode", nil, "paper", [2]any{}, okInit, `{"accounts":["DU1234567"],"isPaper":false}`,
			passed(3, stepView{StepAccounts, "IBKR reports a live login, but these are the paper credentials", false}), "broker_account_not_found", "own mode"},
		{"no permission", nil, "paper", [2]any{}, okInit, "403",
			passed(3, stepView{StepAccounts, "No permission", false}), "broker_no_permission", "Web API access and trading permissions for the account. IBKR said: not permitted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			if tc.lst[0] != nil {
				f.respond("POST /oauth/live_session_token", tc.lst[0].(int), tc.lst[1].(string))
			}
			f.respond("POST /iserver/auth/ssodh/init", 200, tc.init)
			f.respond("GET /trsrv/stocks", 200, `{"AAPL":[{"name":"APPLE INC","assetClass":"STK","contracts":[{"conid":265598,"exchange":"NASDAQ","isUS":true}]}]}`)
			if tc.name == "no trading permission" {
				f.respond("POST /iserver/account/DU1234567/orders/whatif", 200, `{"error":"No trading permissions."}`)
			} else {
				f.respond("POST /iserver/account/DU1234567/orders/whatif", 200, `{"amount":{"amount":"187.25 USD (1 Shares)","commission":"1 USD","total":"188.25 USD"},"equity":{"current":"1,000,000","change":"-1","after":"999,999"},"initial":{"current":"0","change":"93.63","after":"93.63"},"maintenance":{"current":"0","change":"46.81","after":"46.81"},"warn":null,"error":null}`)
			}
			if tc.accounts == "403" {
				f.respond("GET /iserver/accounts", 403, `{"error":"not permitted"}`)
			} else {
				f.respond("GET /iserver/accounts", 200, tc.accounts)
			}
			o, _ := vectorOptions(t, f)
			in := f.v.Credentials.CredentialsInput
			if tc.modify != nil {
				tc.modify(&in)
			}
			res := TestConnection(context.Background(), o, ConnectionTest{Input: in, Mode: tc.mode})
			var got []stepView
			for _, s := range res.Steps {
				got = append(got, stepView{s.Name, s.Message, s.OK})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			if res.OK != (tc.wantCode == "") || (res.Session != nil) != res.OK {
				t.Errorf("OK = %v, Session = %v", res.OK, res.Session != nil)
			}
			if tc.wantCode != "" {
				if res.Error == nil || string(res.Error.Code) != tc.wantCode || !strings.Contains(res.Error.Hint, tc.wantHint) {
					t.Errorf("Error = %+v, want code %s and hint with %q", res.Error, tc.wantCode, tc.wantHint)
				}
			}
			var out strings.Builder
			if err := FormatTestResult(&out, res); err != nil {
				t.Fatal(err)
			}
			last := "connection ok"
			if !res.OK {
				last = "connection FAILED (" + tc.wantCode + ")"
			}
			if !strings.HasSuffix(out.String(), last+"\n") || strings.Count(out.String(), "\n") < len(res.Steps)+1 {
				t.Errorf("FormatTestResult:\n%s", out.String())
			}
			for _, secret := range []string{f.v.Credentials.AccessTokenSecret[:16], f.v.LSTCases[0].Derived.LST[:12]} {
				if strings.Contains(out.String(), secret) {
					t.Errorf("output leaks a secret")
				}
			}
		})
	}
}

// TestTestConnectionUnreachable: a connection refused is "unreachable".
func TestTestConnectionUnreachable(t *testing.T) {
	f := newFake(t)
	f.handle("POST /oauth/live_session_token", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(502)
		io.WriteString(w, "bad gateway")
	})
	o, _ := vectorOptions(t, f)
	res := TestConnection(context.Background(), o, ConnectionTest{Input: f.v.Credentials.CredentialsInput})
	if res.OK || len(res.Steps) != 2 || res.Error.Code != "broker_unavailable" || res.Steps[1].Message != "IBKR is not reachable" ||
		!strings.Contains(res.Steps[1].Hint, "HTTP 502") {
		t.Errorf("result = %+v", res)
	}
}
