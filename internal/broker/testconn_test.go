package broker

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkrsim/simtest"
)

// stepOutline is what a test checks of a step: its name and outcome.
type stepOutline struct {
	Name string
	OK   bool
}

func outline(steps []Step) []stepOutline {
	out := make([]stepOutline, len(steps))
	for i, s := range steps {
		out[i] = stepOutline{s.Name, s.OK}
	}
	return out
}

func okSteps(n int, failed string) []stepOutline {
	names := []string{StepCredentials, StepLiveSessionToken, StepBrokerageSession, StepAccounts, StepTradingPermissions}
	out := make([]stepOutline, 0, n)
	for _, name := range names[:n] {
		out = append(out, stepOutline{name, name != failed})
	}
	return out
}

func TestConnectionTest(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	wrongKey := func(in *Input) {
		// A key IBKR was never given for this consumer.
		in.SignatureKeyPEM = pemOf(t, simtest.MustKeys(t).WrongSignature)
	}
	tests := []struct {
		name  string
		mode  Mode
		acct  string // the account registered at the simulator
		added bool   // whether the simulator knows the consumer
		edit  func(*Input)
		fault func(consumerKey string) map[string]any
		saved bool

		steps      []stepOutline
		code       errs.Code
		message    string
		hint       string // a phrase the hint must contain
		wantStatus Status
	}{
		{name: "pass", mode: Paper, acct: "DU1234567", added: true, saved: true,
			steps: okSteps(5, ""), wantStatus: StatusConnected},
		{name: "pass before saving", mode: Live, acct: "U7654321", added: true,
			steps: okSteps(5, "")},
		{name: "no trading permission", mode: Live, acct: "U7654321", added: true, saved: true,
			fault: func(ck string) map[string]any {
				return map[string]any{"path": "/iserver/account/*/orders/whatif", "kind": "reject", "value": "No trading permissions.", "count": 1, "consumer_key": ck}
			},
			steps: okSteps(5, StepTradingPermissions), code: errs.BrokerNoPermission,
			message: "IBKR would refuse orders from this account", hint: "IBKR Pro account (not Lite)", wantStatus: StatusFailed},
		{name: "invalid signature", mode: Paper, acct: "DU1234567", added: true, edit: wrongKey, saved: true,
			steps: okSteps(2, StepLiveSessionToken), code: errs.BrokerInvalidSignature,
			message: "OAuth handshake failed — invalid signature", hint: "signature key", wantStatus: StatusFailed},
		{name: "consumer not yet active", mode: Paper, acct: "DU1234567", added: false, saved: true,
			steps: okSteps(2, StepLiveSessionToken), code: errs.BrokerConsumerNotRecognized,
			message: "Consumer key not recognized", hint: "weekend restart", wantStatus: StatusPendingActivation},
		{name: "wrong account id", mode: Paper, acct: "DU1111111", added: true, saved: true,
			edit:  func(in *Input) { in.AccountID = "DU2222222" },
			steps: okSteps(4, StepAccounts), code: errs.BrokerAccountNotFound,
			message: "Account not found", hint: "it lists DU•••1111", wantStatus: StatusFailed},
		{name: "paper account under live", mode: Live, acct: "DU1234567", added: true, saved: true,
			steps: okSteps(4, StepAccounts), code: errs.BrokerAccountNotFound,
			message: "Paper account under the live connection", hint: "Save these credentials under Paper", wantStatus: StatusFailed},
		{name: "live account under paper", mode: Paper, acct: "U1234567", added: true, saved: true,
			steps: okSteps(4, StepAccounts), code: errs.BrokerAccountNotFound,
			message: "Live account under the paper connection", hint: "Save these credentials under Live", wantStatus: StatusFailed},
		{name: "IBKR down", mode: Paper, acct: "DU1234567", added: true, saved: true,
			fault: func(ck string) map[string]any {
				return map[string]any{"path": "/oauth/live_session_token", "kind": "status", "value": 503, "count": 1, "consumer_key": ck}
			},
			steps: okSteps(2, StepLiveSessionToken), code: errs.BrokerUnavailable,
			message: "IBKR is not reachable", hint: "Try again in a few minutes", wantStatus: StatusFailed},
		{name: "rate limited", mode: Paper, acct: "DU1234567", added: true,
			fault: func(ck string) map[string]any {
				return map[string]any{"path": "/oauth/live_session_token", "kind": "status", "value": 429, "count": 1, "consumer_key": ck}
			},
			steps: okSteps(2, StepLiveSessionToken), code: errs.BrokerRateLimited,
			message: "Too many requests to IBKR", hint: "Wait a minute"},
		{name: "brokerage session refused", mode: Paper, acct: "DU1234567", added: true, saved: true,
			fault: func(ck string) map[string]any {
				return map[string]any{"path": "/iserver/auth/ssodh/init", "kind": "status", "value": 500, "count": 1, "consumer_key": ck}
			},
			steps: okSteps(3, StepBrokerageSession), code: errs.BrokerNotConnected,
			message: "Brokerage session could not be opened", hint: "Log out of IBKR's other platforms", wantStatus: StatusFailed},
		{name: "token expired", mode: Paper, acct: "DU1234567", added: true, saved: true,
			fault: func(ck string) map[string]any {
				return map[string]any{"path": "/iserver/accounts", "kind": "invalid_lst", "count": 1, "consumer_key": ck}
			},
			steps: okSteps(4, StepAccounts), code: errs.BrokerTokenExpired,
			message: "Live session token expired", hint: "regenerate the access token", wantStatus: StatusFailed},
		{name: "malformed credentials before saving", mode: Paper, acct: "DU1234567", added: true,
			edit:  func(in *Input) { in.SignatureKeyPEM = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n" },
			steps: okSteps(1, StepCredentials), code: errs.Invalid,
			message: "The credentials are incomplete or invalid", hint: "signature_key_pem: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := e.user()
			in := e.sim.register(tt.acct, tt.added)
			if tt.edit != nil {
				tt.edit(&in)
			}
			if tt.fault != nil {
				e.sim.fault(tt.fault(in.ConsumerKey))
			}
			var res TestResult
			var err error
			if tt.saved {
				if _, err := e.svc.Save(ctx, u, tt.mode, in, Actor{UserID: u}); err != nil {
					t.Fatal(err)
				}
				res, err = e.svc.Test(ctx, u, tt.mode, nil, Actor{UserID: u})
			} else {
				res, err = e.svc.Test(ctx, u, tt.mode, &in, Actor{UserID: u})
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.steps, outline(res.Steps)); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			if res.OK != (tt.code == "") {
				t.Errorf("ok = %v, want %v", res.OK, tt.code == "")
			}
			for _, s := range res.Steps {
				if s.Message == "" {
					t.Errorf("step %s has no message", s.Name)
				}
			}
			if tt.code != "" {
				if res.Error == nil {
					t.Fatalf("no error in %+v", res)
				}
				last := res.Steps[len(res.Steps)-1]
				got := TestError{Code: res.Error.Code, Message: res.Error.Message}
				if diff := cmp.Diff(TestError{Code: tt.code, Message: tt.message}, got); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
				if last.Message != res.Error.Message || last.Hint != res.Error.Hint {
					t.Errorf("failed step %q/%q differs from error %q/%q", last.Message, last.Hint, res.Error.Message, res.Error.Hint)
				}
				if !strings.Contains(res.Error.Hint, tt.hint) {
					t.Errorf("hint %q does not contain %q", res.Error.Hint, tt.hint)
				}
			} else if res.Error != nil {
				t.Errorf("error = %+v, want none", res.Error)
			}
			b, _ := json.Marshal(res)
			for _, s := range secrets(in) {
				if strings.Contains(string(b), s) {
					t.Errorf("the test result contains a secret (%.12s…)", s)
				}
			}

			e.wantCount(t, 1, "audit rows", `SELECT count(*) FROM audit_events WHERE user_id = $1 AND action = 'broker.connection_tested'`, u)
			if !tt.saved {
				return
			}
			ov, err := e.svc.Overview(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			c := ov.Connections[tt.mode]
			if c == nil || c.LastTest == nil {
				t.Fatalf("no last_test stored: %+v", c)
			}
			if c.Status != tt.wantStatus {
				t.Errorf("status = %s, want %s", c.Status, tt.wantStatus)
			}
			if diff := cmp.Diff(res, *c.LastTest); diff != "" {
				t.Errorf("last_test differs from the result (-result +stored):\n%s", diff)
			}
		})
	}
}

// TestConnectionTestLeavesTheOtherLogin: while another login (Client
// Portal, TWS) holds the brokerage session, Test Connection says so at the
// brokerage-session step and signs nobody out, as its hint promises.
func TestConnectionTestLeavesTheOtherLogin(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	u, in, c := e.warmSession(t, ctx)
	e.otherLogin(t, ctx, c, u)
	res, err := e.svc.Test(ctx, u, Paper, nil, Actor{UserID: u})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(okSteps(3, StepBrokerageSession), outline(res.Steps)); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if res.Error == nil || res.Error.Message != "Another IBKR login holds the brokerage session" {
		t.Errorf("error = %+v, want the other login named", res.Error)
	}
	if n := e.sim.sim.Load().Stats()[in.ConsumerKey].OtherLoginsSignedOut; n != 0 {
		t.Errorf("Test Connection signed %d other logins out, want none", n)
	}
}
