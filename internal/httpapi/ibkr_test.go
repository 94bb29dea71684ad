package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ordertune/ordertune/internal/auth"
)

// TestIBKRPassthroughOverHTTP drives /api/v1/ibkr/* and /api/v1/ibkr/ws as a
// signed-in subscriber whose saved paper connection talks to the simulator.
func TestIBKRPassthroughOverHTTP(t *testing.T) {
	env := newBrokerEnv(t)
	sub, c := env.connectedSubscriber("DU7000001")
	other := env.register("DU7000002")

	tests := []struct {
		name     string
		path     string
		want     int
		wantBody string // in the body; for problems, the code
	}{
		{"snapshot", "/api/v1/ibkr/iserver/marketdata/snapshot?conids=265598&fields=31,84,86", http.StatusOK, `"31":`},
		{"own summary by alias", "/api/v1/ibkr/portfolio/me/summary", http.StatusOK, `"netliquidation"`},
		{"contract info", "/api/v1/ibkr/iserver/contract/265598/info", http.StatusOK, `"symbol":"AAPL"`},
		{"off the list", "/api/v1/ibkr/iserver/accounts", http.StatusForbidden, "forbidden"},
		{"another account", "/api/v1/ibkr/portfolio/" + other["account_id"] + "/positions", http.StatusForbidden, "forbidden"},
		{"encoded slash", "/api/v1/ibkr/portfolio/me%2F..%2Fx/positions", http.StatusForbidden, "forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do(http.MethodGet, tc.path, nil)
			if r.status != tc.want {
				t.Fatalf("status %d %s, want %d", r.status, r.body, tc.want)
			}
			if r.status >= 400 {
				if p := r.problem(t); string(p.Code) != tc.wantBody {
					t.Errorf("code %q, want %q", p.Code, tc.wantBody)
				}
				return
			}
			if !strings.Contains(string(r.body), tc.wantBody) {
				t.Errorf("body %.300s lacks %s", r.body, tc.wantBody)
			}
		})
	}

	// A password-only session may not use IBKR.
	half := env.passwordOnly(sub)
	if r := half.do(http.MethodGet, "/api/v1/ibkr/portfolio/me/summary", nil); r.status != http.StatusForbidden || r.problem(t).Code != "mfa_required" {
		t.Errorf("password-only: %d %s", r.status, r.body)
	}

	// The stream: market data for a conid through the signed-in session.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := http.Header{"Cookie": {env.srv.sessionCookieName() + "=" + c.session}}
	ws, _, err := websocket.Dial(ctx, strings.Replace(env.ts.URL, "http://", "ws://", 1)+"/api/v1/ibkr/ws", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte(`smd+265598+{"fields":["31"]}`)); err != nil {
		t.Fatal(err)
	}
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("no tick: %v", err)
		}
		var m map[string]any
		if json.Unmarshal(b, &m) == nil && m["topic"] == "smd+265598" && m["31"] != nil {
			break
		}
	}
	ws.Close(websocket.StatusNormalClosure, "")

	// Without a session the upgrade is refused before anything happens.
	_, resp, err := websocket.Dial(ctx, strings.Replace(env.ts.URL, "http://", "ws://", 1)+"/api/v1/ibkr/ws", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous upgrade: %v %v", err, resp)
	}
}

// TestIBKRPassthroughWithoutBroker: no master key, no broker service: 503.
func TestIBKRPassthroughWithoutBroker(t *testing.T) {
	env := newAuthEnv(t)
	c := env.signIn(env.newAccount(auth.Subscriber, true))
	for _, p := range []string{"/api/v1/ibkr/trsrv/stocks?symbols=AAPL", "/api/v1/ibkr/ws"} {
		if r := c.do(http.MethodGet, p, nil); r.status != http.StatusServiceUnavailable {
			t.Errorf("%s: %d %s", p, r.status, r.body)
		}
	}
}

// TestPassthroughLogMasksAccounts: refused pass-through requests — by the
// allowlist, the method, the authorization — name account ids in their
// paths; the log never holds them.
func TestPassthroughLogMasksAccounts(t *testing.T) {
	t.Parallel()
	env := newBrokerEnv(t)
	_, c := env.connectedSubscriber("DU7100001")
	const foreign = "7100999"
	for _, tc := range []struct {
		c      *client
		method string
		path   string
	}{
		{c, http.MethodGet, "/api/v1/ibkr/portfolio/DU" + foreign + "/positions"},
		{c, http.MethodGet, "/api/v1/ibkr/portfolio/du" + foreign + ".json/positions"},
		{c, http.MethodGet, "/api/v1/ibkr/portfolio/DU7100001,U" + foreign + "/positions"},
		{c, http.MethodGet, "/api/v1/ibkr/iserver/account/U" + foreign + "/orders"},
		{c, http.MethodPost, "/api/v1/ibkr/iserver/account/U" + foreign + "/orders"},
		{env.browser(), http.MethodGet, "/api/v1/ibkr/portfolio/U" + foreign + "/positions"},
	} {
		if r := tc.c.do(tc.method, tc.path, nil); r.status < 400 || r.status >= 500 {
			t.Errorf("%s %s: %d, want a refusal", tc.method, tc.path, r.status)
		}
	}
	if strings.Contains(env.logs.String(), foreign) {
		t.Errorf("the log holds the account id:\n%s", env.logs.String())
	}
}
