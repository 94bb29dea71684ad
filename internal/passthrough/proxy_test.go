package passthrough_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/clocktest"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/passthrough"
)

// TestAllowlistedRoutesPerTenant: every default route answers each tenant
// from that tenant's own IBKR session (the simulator verifies each
// consumer's signature), with the query passed through.
func TestAllowlistedRoutesPerTenant(t *testing.T) {
	e := newEnv(t, envOptions{})
	tenants := []tenant{e.tenant("DU4000001"), e.tenant("DU4000002")}
	for _, tn := range tenants {
		e.placeOrder(tn, "pt-order-"+tn.account)
	}
	for _, tn := range tenants {
		tests := []struct {
			pathQuery string
			want      string // in the body
		}{
			{"iserver/secdef/search?symbol=AAPL&secType=STK", `"conid":"265598"`},
			{"iserver/marketdata/history?conid=265598&period=1w&bar=1d", `"symbol":"AAPL"`},
			{"iserver/marketdata/snapshot?conids=265598,272093&fields=31,84,86", `"conid":272093`},
			{"trsrv/stocks?symbols=AAPL,MSFT", `"MSFT"`},
			{"iserver/contract/265598/info", `"company_name":"APPLE INC"`},
			{"portfolio/" + tn.account + "/positions", `"acctId":"` + tn.account + `"`},
			{"portfolio/me/summary", `"value":"` + tn.account + `"`},
			{"portfolio/" + strings.ToLower(tn.account) + "/summary", `"value":"` + tn.account + `"`},
			{"iserver/account/orders", `"order_ref":"pt-order-` + tn.account + `"`},
			{"iserver/account/trades", `"order_ref":"pt-order-` + tn.account + `"`},
		}
		for _, tc := range tests {
			t.Run(tn.account+"/"+tc.pathQuery, func(t *testing.T) {
				status, hdr, body := e.get(tn, tc.pathQuery)
				if status != http.StatusOK || !strings.Contains(string(body), tc.want) {
					t.Fatalf("status %d, body %.300s; want 200 with %s", status, body, tc.want)
				}
				if !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
					t.Errorf("Content-Type %q", hdr.Get("Content-Type"))
				}
				for _, other := range tenants {
					if other.account != tn.account && strings.Contains(string(body), other.account) {
						t.Errorf("%s's answer names %s: %.300s", tn.account, other.account, body)
					}
				}
			})
		}
	}
}

// TestRefusedBeforeIBKR: a route off the list, a path trick or another
// tenant's account is refused with 403 and nothing reaches the simulator.
func TestRefusedBeforeIBKR(t *testing.T) {
	e := newEnv(t, envOptions{})
	me, other := e.tenant("DU4100001"), e.tenant("DU4100002")
	e.warm(me)
	tests := []struct {
		name, pathQuery string
		want            int
	}{
		{"order placement is not a read", "iserver/account/" + me.account + "/orders", http.StatusForbidden},
		{"accounts list is off the list", "iserver/accounts", http.StatusForbidden},
		{"tickle", "tickle", http.StatusForbidden},
		{"reply", "iserver/reply/abc", http.StatusForbidden},
		{"order status", "iserver/account/order/status/1", http.StatusForbidden},
		{"another tenant's positions", "portfolio/" + other.account + "/positions", http.StatusForbidden},
		{"another tenant's summary", "portfolio/" + other.account + "/summary", http.StatusForbidden},
		{"another account in the query", "iserver/account/orders?accountId=" + other.account, http.StatusForbidden},
		{"mine and another in the query", "iserver/account/trades?acctId=" + me.account + "," + other.account, http.StatusForbidden},
		{"dot segments", "portfolio/" + me.account + "/../" + other.account + "/positions", http.StatusForbidden},
		{"encoded slash", "portfolio/" + me.account + "%2F..%2F" + other.account + "/positions", http.StatusForbidden},
		{"encoded dots", "iserver/%2e%2e/tickle", http.StatusForbidden},
		{"conid that is not a number", "iserver/contract/abc/info", http.StatusForbidden},
		{"trailing slash", "trsrv/stocks/", http.StatusForbidden},
		{"empty path", "", http.StatusForbidden},
		{"malformed query", "trsrv/stocks?symbols=%zz", http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.sim.seen()
			status, _, body := e.get(me, tc.pathQuery)
			if status != tc.want {
				t.Errorf("status %d (%s), want %d", status, body, tc.want)
			}
			if got := e.sim.since(before); len(got) != 0 {
				t.Errorf("reached the simulator: %v", got)
			}
		})
	}
}

// TestOperatorAllowlist: an operator's list replaces the default one.
func TestOperatorAllowlist(t *testing.T) {
	routes, err := passthrough.ParseRouteList("trsrv/stocks, /portfolio/{accountId}/positions/{page}")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{proxy: passthrough.Config{Routes: routes}})
	tn := e.tenant("DU4200001")
	if status, _, body := e.get(tn, "portfolio/me/positions/0"); status != http.StatusOK {
		t.Errorf("configured route: %d %s", status, body)
	}
	if status, _, _ := e.get(tn, "iserver/secdef/search?symbol=AAPL"); status != http.StatusForbidden {
		t.Errorf("default route off the operator's list: %d", status)
	}
}

// TestUnauthorizedGetsOneHandshake: IBKR's 401 on a cached token makes
// exactly one new handshake and the call is repeated; a second 401 is
// reported, not retried forever.
func TestUnauthorizedGetsOneHandshake(t *testing.T) {
	// Each 401 here is the token's fault: no handshake budget applies
	// (TestHandshakeBudget checks it).
	e := newEnv(t, envOptions{cache: broker.CacheConfig{RepairEvery: time.Nanosecond}})
	tn := e.tenant("DU4300001")
	e.warm(tn)

	// The simulator drops the LST on the next request: 401, then the
	// repaired session answers.
	e.sim.sim.AddFault(ibkrsim.Fault{Kind: ibkrsim.FaultInvalidLST, Path: "/trsrv/stocks", Count: 1, ConsumerKey: tn.consumerKey})
	before := e.sim.handshakes.Load()
	status, _, body := e.get(tn, "trsrv/stocks?symbols=AAPL")
	if status != http.StatusOK || !strings.Contains(string(body), `"AAPL"`) {
		t.Fatalf("after one 401: %d %s", status, body)
	}
	if n := e.sim.handshakes.Load() - before; n != 1 {
		t.Errorf("%d handshakes, want 1", n)
	}

	// Two 401s in a row: one handshake, then the error.
	e.sim.sim.AddFault(ibkrsim.Fault{Kind: ibkrsim.FaultStatus, Path: "/trsrv/stocks", Value: json.RawMessage(`401`), Count: 2, ConsumerKey: tn.consumerKey})
	before = e.sim.handshakes.Load()
	start := e.sim.seen()
	status, _, body = e.get(tn, "trsrv/stocks?symbols=AAPL")
	if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), "broker_token_expired") {
		t.Fatalf("after two 401s: %d %s", status, body)
	}
	if n := e.sim.handshakes.Load() - before; n != 1 {
		t.Errorf("%d handshakes, want exactly 1", n)
	}
	stocks := 0
	for _, r := range e.sim.since(start) {
		if r == "GET /trsrv/stocks" {
			stocks++
		}
	}
	if stocks != 2 {
		t.Errorf("the call was sent %d times, want 2", stocks)
	}
}

// TestQueryIBKRCannotVerifyIsRefused: a query with a raw '#' (or another
// byte that must be percent-encoded) would fail IBKR's signature check and
// cost a handshake per request; it is refused with 400 before any session
// is made or anything is sent.
func TestQueryIBKRCannotVerifyIsRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	tn := e.tenant("DU4310001")
	handshakes, seen := e.sim.handshakes.Load(), e.sim.seen()
	for _, q := range []string{"symbols=AAPL#x", "symbols=AAPL#", "symbols=A APL", "symbols=\"AAPL\"", "symbols=%zzAAPL", "symbols=AAPL%", "symbols=\xc3\xa9"} {
		if status, body := e.getRaw(tn, "trsrv/stocks", q); status != http.StatusBadRequest {
			t.Errorf("?%s: %d %s, want 400", q, status, body)
		}
	}
	if n := e.sim.handshakes.Load() - handshakes; n != 0 {
		t.Errorf("%d handshakes, want none", n)
	}
	if got := e.sim.since(seen); len(got) != 0 {
		t.Errorf("reached the simulator: %v", got)
	}
	if status, body := e.getRaw(tn, "trsrv/stocks", "symbols=AAPL%23x,MSFT"); status != http.StatusOK {
		t.Errorf("an encoded '#': %d %s, want 200", status, body)
	}
}

// TestHandshakeBudget: requests IBKR refuses whatever the token (401 on
// every try) cost one repair handshake per tenant, not one per request.
func TestHandshakeBudget(t *testing.T) {
	e := newEnv(t, envOptions{})
	tn := e.tenant("DU4320001")
	e.warm(tn)
	e.sim.sim.AddFault(ibkrsim.Fault{Kind: ibkrsim.FaultStatus, Path: "/trsrv/stocks", Value: json.RawMessage(`401`), Count: 100, ConsumerKey: tn.consumerKey})
	before := e.sim.handshakes.Load()
	for range 5 {
		if status, _, body := e.get(tn, "trsrv/stocks?symbols=AAPL"); status != http.StatusUnprocessableEntity || !strings.Contains(string(body), "broker_token_expired") {
			t.Errorf("refused request: %d %s", status, body)
		}
	}
	if n := e.sim.handshakes.Load() - before; n > 1 {
		t.Errorf("5 refused requests made %d handshakes, want at most 1", n)
	}
	// Another route of the same tenant still works on the token made.
	if status, _, body := e.get(tn, "iserver/secdef/search?symbol=AAPL&secType=STK"); status != http.StatusOK {
		t.Errorf("another route after the refusals: %d %s", status, body)
	}
}

// TestTooManyRequestsPassesThrough: IBKR's 429 reaches the client with its
// Retry-After, and the proxy's own pacing refusal carries one too.
func TestTooManyRequestsPassesThrough(t *testing.T) {
	e := newEnv(t, envOptions{proxy: passthrough.Config{Timeout: 2 * time.Second}})
	tn := e.tenant("DU4400001")
	e.warm(tn)
	e.sim.sim.AddFault(ibkrsim.Fault{Kind: ibkrsim.FaultStatus, Path: "/iserver/marketdata/snapshot", Value: json.RawMessage(`429`), Count: 1})
	status, hdr, body := e.get(tn, "iserver/marketdata/snapshot?conids=265598")
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") != "1" || !strings.Contains(string(body), "Too Many Requests") {
		t.Errorf("IBKR's 429: %d Retry-After %q %s", status, hdr.Get("Retry-After"), body)
	}

	// The live-orders list is paced to 1 per 5 s: the second call within
	// the proxy's 2 s timeout is refused without being sent.
	if status, _, body := e.get(tn, "iserver/account/orders"); status != http.StatusOK {
		t.Fatalf("orders: %d %s", status, body)
	}
	before := e.sim.seen()
	status, hdr, body = e.get(tn, "iserver/account/orders")
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Errorf("paced: %d Retry-After %q %s", status, hdr.Get("Retry-After"), body)
	}
	if got := e.sim.since(before); len(got) != 0 {
		t.Errorf("a paced call reached the simulator: %v", got)
	}
}

// TestErrorAnswersStreamUnchanged: IBKR's own error answers (here a 404
// for an unknown page and a 400 for a bad conid) reach the client as IBKR
// sent them.
func TestErrorAnswersStreamUnchanged(t *testing.T) {
	e := newEnv(t, envOptions{})
	tn := e.tenant("DU4500001")
	status, _, body := e.get(tn, "iserver/contract/1/info")
	want := `{"error":"Bad Request: unknown conid 1","statusCode":400}`
	if diff := cmp.Diff(want, string(body)); status != http.StatusBadRequest || diff != "" {
		t.Errorf("status %d, body (-want +got):\n%s", status, diff)
	}
}

// TestOrderPathGoesFirst: while a burst of pass-through reads waits for the
// tenant's pacing budget (10 requests a second), an order placed on the
// same session is not queued behind them: it is done while reads are still
// waiting.
func TestOrderPathGoesFirst(t *testing.T) {
	e := newEnv(t, envOptions{sim: ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}}})
	tn := e.tenant("DU4600001")
	e.warm(tn)
	const reads = 30
	var done atomic.Int64
	var wg sync.WaitGroup
	for range reads {
		wg.Go(func() {
			if status, _, body := e.get(tn, "iserver/marketdata/snapshot?conids=265598"); status != http.StatusOK {
				t.Errorf("read: %d %s", status, body)
			}
			done.Add(1)
		})
	}
	// Let the reads start waiting on the pacer.
	clocktest.WaitFor(t, "reads under way", func() bool { return done.Load() >= 3 })
	e.placeOrder(tn, "priority-1")
	finishedBefore := done.Load()
	wg.Wait()
	if finishedBefore >= reads {
		t.Errorf("the order finished after all %d reads: it waited behind them", reads)
	}
	t.Logf("reads finished before the order: %d of %d", finishedBefore, reads)
}
