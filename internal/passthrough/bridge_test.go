package passthrough_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ordertune/ordertune/internal/clocktest"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ibkrsim/simtest"
	"github.com/ordertune/ordertune/internal/passthrough"
)

// dial opens the bridge as the tenant.
func (e *env) dial(ctx context.Context, tn tenant) (*websocket.Conn, error) {
	u := strings.Replace(e.front.URL, "http://", "ws://", 1) + "/u/" + tn.id + "/ws"
	c, resp, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, fmt.Errorf("dial (status %d): %w", status, err)
	}
	return c, nil
}

// mustDial is dial for the test's own goroutine: a failure ends the test,
// and the socket is closed when the test ends.
func (e *env) mustDial(ctx context.Context, t testing.TB, tn tenant) *websocket.Conn {
	t.Helper()
	c, err := e.dial(ctx, tn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// orderRefs lists the cOIDs of a sor message.
func orderRefs(m map[string]any) []string {
	if m["topic"] != "sor" {
		return nil
	}
	var out []string
	args, _ := m["args"].([]any)
	for _, a := range args {
		if o, ok := a.(map[string]any); ok {
			if ref, ok := o["order_ref"].(string); ok {
				out = append(out, ref)
			}
		}
	}
	return out
}

// readUntilRef reads messages until an sor update lists the order with
// cOID ref; it returns every message read, that update last.
func readUntilRef(ctx context.Context, c *websocket.Conn, ref string) ([]map[string]any, error) {
	return simtest.ReadUntil(ctx, c, func(m map[string]any) bool { return slices.Contains(orderRefs(m), ref) })
}

func send(ctx context.Context, t testing.TB, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("send %s: %v", msg, err)
	}
}

// TestBridgeMarketData: subscribe to a conid through the bridge and
// receive its ticks; a topic off the list is answered, not relayed.
func TestBridgeMarketData(t *testing.T) {
	e := newEnv(t, envOptions{})
	tn := e.tenant("DU5000001")
	ctx := ctxT(t)
	c := e.mustDial(ctx, t, tn)
	simtest.WantTicks(ctx, t, c)
	send(ctx, t, c, `ssd+DU9999999+{}`)
	if _, err := simtest.ReadUntil(ctx, c, func(m map[string]any) bool {
		e, _ := m["error"].(string)
		return m["topic"] == "error" && strings.Contains(e, "not allowed")
	}); err != nil {
		t.Fatal(err)
	}
	// Several ticks keep coming.
	for range 3 {
		if _, err := simtest.ReadUntil(ctx, c, simtest.Topic("smd+265598")); err != nil {
			t.Fatal(err)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
	clocktest.WaitFor(t, "the bridge to close", func() bool { return e.proxy.Bridges() == 0 })
}

// TestBridgeTenantsSeeOnlyTheirOrders: 100 sockets across 20 tenants; each
// socket's order updates name only its tenant's orders, both in the list
// sent at subscription and in later changes.
func TestBridgeTenantsSeeOnlyTheirOrders(t *testing.T) {
	e := newEnv(t, envOptions{sim: ibkrsim.Config{Pacing: ibkrsim.Pacing{PerSecond: 1000, Burst: 1000}}})
	const tenants, perTenant = 20, 5
	tns := make([]tenant, tenants)
	for i := range tns {
		tns[i] = e.tenant(fmt.Sprintf("DU52%05d", i))
	}
	// Every tenant already has an order before the sockets open.
	var wg sync.WaitGroup
	for _, tn := range tns {
		wg.Go(func() { e.placeOrder(tn, "before-"+tn.account) })
	}
	wg.Wait()

	ctx := ctxT(t)
	type sock struct {
		tn   tenant
		conn *websocket.Conn
	}
	socks := make([]sock, 0, tenants*perTenant)
	var mu sync.Mutex
	errc := make(chan error, tenants*perTenant)
	for _, tn := range tns {
		for range perTenant {
			wg.Go(func() {
				c, err := e.dial(ctx, tn)
				if err != nil {
					errc <- err
					return
				}
				if err := c.Write(ctx, websocket.MessageText, []byte("sor+{}")); err != nil {
					errc <- err
					return
				}
				mu.Lock()
				socks = append(socks, sock{tn, c})
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	defer func() {
		for _, s := range socks {
			s.conn.CloseNow()
		}
	}()
	// The server counts a bridge once its side of the upgrade is done, which
	// can trail the client's by a moment.
	clocktest.WaitFor(t, fmt.Sprintf("%d bridges to be open", tenants*perTenant), func() bool {
		return e.proxy.Bridges() == tenants*perTenant
	})
	// Each socket first sees its tenant's existing order.
	check := func(s sock, ref string) error {
		seen, err := readUntilRef(ctx, s.conn, ref)
		if err != nil {
			return fmt.Errorf("%s: waiting for %s: %w", s.tn.account, ref, err)
		}
		for _, m := range seen {
			for _, r := range orderRefs(m) {
				if !strings.HasSuffix(r, s.tn.account) {
					return fmt.Errorf("%s's socket saw order %s", s.tn.account, r)
				}
			}
		}
		return nil
	}
	run := func(ref func(tenant) string) {
		errc := make(chan error, len(socks))
		for _, s := range socks {
			wg.Go(func() { errc <- check(s, ref(s.tn)) })
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Error(err)
			}
		}
	}
	run(func(tn tenant) string { return "before-" + tn.account })
	// Then a new order per tenant, placed while every socket listens.
	for _, tn := range tns {
		wg.Go(func() { e.placeOrder(tn, "after-"+tn.account) })
	}
	wg.Wait()
	run(func(tn tenant) string { return "after-" + tn.account })
}

// TestBridgeClosesWhenSessionRenewed: once the tenant's session is renewed
// (here: the connection invalidated and prepared again) the socket closes
// with CloseSessionRenewed, and a new socket works.
func TestBridgeClosesWhenSessionRenewed(t *testing.T) {
	e := newEnv(t, envOptions{})
	tn := e.tenant("DU5300001")
	ctx := ctxT(t)
	c := e.mustDial(ctx, t, tn)
	send(ctx, t, c, `smd+265598+{}`)
	if _, err := simtest.ReadUntil(ctx, c, simtest.Topic("smd+265598")); err != nil {
		t.Fatal(err)
	}
	e.svc.Cache().Invalidate(tn.id)
	e.warm(tn) // a new LST: IBKR's side ends the old session too
	_, err := simtest.ReadUntil(ctx, c, func(map[string]any) bool { return false })
	if got := websocket.CloseStatus(err); got != passthrough.CloseSessionRenewed {
		t.Fatalf("close status %d (%v), want %d", got, err, passthrough.CloseSessionRenewed)
	}
	clocktest.WaitFor(t, "the bridge to close", func() bool { return e.proxy.Bridges() == 0 })

	c2, err := e.dial(ctx, tn)
	if err != nil {
		t.Fatalf("reconnect: %v", err)
	}
	defer c2.CloseNow()
	send(ctx, t, c2, `smd+265598+{}`)
	if _, err := simtest.ReadUntil(ctx, c2, simtest.Topic("smd+265598")); err != nil {
		t.Fatal(err)
	}
}

// TestBridgeClosesWhenIBKRGoesAway: when IBKR's side ends, the browser's
// socket closes with CloseUpstreamGone.
func TestBridgeClosesWhenIBKRGoesAway(t *testing.T) {
	e := newEnv(t, envOptions{})
	tn := e.tenant("DU5400001")
	ctx := ctxT(t)
	c := e.mustDial(ctx, t, tn)
	// IBKR's greeting proves its side is up (and its socket recorded).
	if _, err := simtest.ReadUntil(ctx, c, simtest.Topic("system")); err != nil {
		t.Fatal(err)
	}
	e.sim.cutSockets()
	_, err := simtest.ReadUntil(ctx, c, func(map[string]any) bool { return false })
	if got := websocket.CloseStatus(err); got != passthrough.CloseUpstreamGone {
		t.Fatalf("close status %d (%v), want %d", got, err, passthrough.CloseUpstreamGone)
	}
	clocktest.WaitFor(t, "the bridge to close", func() bool { return e.proxy.Bridges() == 0 })
}

// TestBridgeRefusesWithoutSession: a tenant without a saved connection
// gets an error before any upgrade.
func TestBridgeRefusesWithoutSession(t *testing.T) {
	e := newEnv(t, envOptions{})
	var id string
	if err := e.pool.QueryRow(ctxT(t), `INSERT INTO users (email, role, password_hash, created_at, updated_at)
		VALUES ('n-' || gen_random_uuid() || '@example.test', 'subscriber', '!', now(), now()) RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	_, err := e.dial(ctxT(t), tenant{id: id})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("status %d", http.StatusUnprocessableEntity)) {
		t.Fatalf("dial without a connection: %v", err)
	}
}

// TestBridgeRefusesBadUpgrades: a plain GET and a cross-origin browser are
// refused before IBKR is asked anything.
func TestBridgeRefusesBadUpgrades(t *testing.T) {
	e := newEnv(t, envOptions{})
	tn := e.tenant("DU5500001")
	e.warm(tn)
	before := e.sim.seen()
	resp, err := e.front.Client().Get(e.front.URL + "/u/" + tn.id + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("plain GET: %d", resp.StatusCode)
	}
	u := strings.Replace(e.front.URL, "http://", "ws://", 1) + "/u/" + tn.id + "/ws"
	_, resp, err = websocket.Dial(ctxT(t), u, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin: %v %v", err, resp)
	}
	if got := e.sim.since(before); len(got) != 0 {
		t.Errorf("reached the simulator: %v", got)
	}
}

// TestBridgeOutlivesServerTimeouts: neither the HTTP server's read and
// write timeouts (internal/httpapi sets them) nor the proxy's timeout for
// opening the stream cut a socket that is in use.
func TestBridgeOutlivesServerTimeouts(t *testing.T) {
	e := newEnv(t, envOptions{frontTimeout: 300 * time.Millisecond, proxy: passthrough.Config{Timeout: time.Second}})
	tn := e.tenant("DU5600001")
	e.warm(tn)
	ctx := ctxT(t)
	c := e.mustDial(ctx, t, tn)
	send(ctx, t, c, `smd+265598+{}`)
	// The simulator ticks every 200 ms: 10 ticks span well past both.
	for i := range 10 {
		if _, err := simtest.ReadUntil(ctx, c, simtest.Topic("smd+265598")); err != nil {
			t.Fatalf("tick %d: %v", i, err)
		}
	}
	send(ctx, t, c, `umd+265598+{}`)
	send(ctx, t, c, `tic`)
	if _, err := simtest.ReadUntil(ctx, c, simtest.Topic("tic")); err != nil {
		t.Fatalf("after the timeouts, the browser's messages still reach IBKR: %v", err)
	}
}
