package ibkrsim_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ibkrsim/simtest"
)

// sessionID tickles for the api cookie value.
func (c *client) sessionID() string {
	c.t.Helper()
	r := c.call(http.MethodPost, "/tickle", nil)
	mustStatus(c.t, "tickle", r, http.StatusOK)
	var tk struct {
		Session string `json:"session"`
	}
	r.json(c.t, &tk)
	return tk.Session
}

// dialWS opens the simulator's WebSocket as token with cookie api=sid.
func dialWS(ctx context.Context, base, token, sid string) (*websocket.Conn, *http.Response, error) {
	u := strings.Replace(base, "http://", "ws://", 1) + "/v1/api/ws?oauth_token=" + url.QueryEscape(token)
	h := http.Header{"User-Agent": {"ibkrsim-test/1"}}
	if sid != "" {
		h.Set("Cookie", "api="+sid)
	}
	return websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
}

// sorHas reports whether a sor message lists the order with cOID coid.
func sorHas(m map[string]any, coid string) bool {
	if m["topic"] != "sor" {
		return false
	}
	args, _ := m["args"].([]any)
	for _, a := range args {
		if o, _ := a.(map[string]any); o["order_ref"] == coid {
			return true
		}
	}
	return false
}

func TestWebSocketStreams(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{})
	c := f.ready("DU3000001")
	other := f.ready("DU3000002")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	conn, _, err := dialWS(ctx, f.srv.URL, c.token, c.sessionID())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if _, err := simtest.ReadUntil(ctx, conn, simtest.Topic("sts")); err != nil {
		t.Fatalf("no status message: %v", err)
	}

	// Market data: ticks for the subscribed conid with its fields.
	simtest.WantTicks(ctx, t, conn)
	// Unknown topics and conids get an error message, not a closed socket.
	conn.Write(ctx, websocket.MessageText, []byte(`xyz+1`))
	if _, err := simtest.ReadUntil(ctx, conn, simtest.Topic("error")); err != nil {
		t.Fatal(err)
	}

	// Order updates: only the consumer's own.
	otherConn, _, err := dialWS(ctx, f.srv.URL, other.token, other.sessionID())
	if err != nil {
		t.Fatal(err)
	}
	defer otherConn.CloseNow()
	for _, cn := range []*websocket.Conn{conn, otherConn} {
		if err := cn.Write(ctx, websocket.MessageText, []byte(`sor+{}`)); err != nil {
			t.Fatal(err)
		}
	}
	c.place(orderBody(c.account, 265598, "ws-mine", "MKT", "BUY", 5, "DAY", 0))
	other.place(orderBody(other.account, 265598, "ws-other", "MKT", "BUY", 5, "DAY", 0))
	if _, err := simtest.ReadUntil(ctx, conn, func(m map[string]any) bool { return sorHas(m, "ws-mine") }); err != nil {
		t.Fatalf("no sor update for my order: %v", err)
	}
	seen, err := simtest.ReadUntil(ctx, otherConn, func(m map[string]any) bool { return sorHas(m, "ws-other") })
	if err != nil {
		t.Fatalf("no sor update for the other's order: %v", err)
	}
	for _, m := range seen {
		if sorHas(m, "ws-mine") {
			t.Fatalf("the other consumer saw my order: %v", m)
		}
	}

	// A new live session token ends the socket opened with the old session.
	if _, err := c.handshake(); err != nil {
		t.Fatal(err)
	}
	_, err = simtest.ReadUntil(ctx, conn, func(map[string]any) bool { return false })
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("after a new LST: %v, want close 1008", err)
	}
}

func TestWebSocketRefusals(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{})
	c := f.ready("DU3000003")
	other := f.ready("DU3000004")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sid := c.sessionID()
	tests := []struct {
		name, token, sid string
	}{
		{"no cookie", c.token, ""},
		{"wrong session", c.token, strings.Repeat("0", 32)},
		{"another consumer's session", c.token, other.sessionID()},
		{"unknown token", "0123456789abcdef0123", sid},
		{"no token", "", sid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, resp, err := dialWS(ctx, f.srv.URL, tc.token, tc.sid)
			if err == nil {
				conn.CloseNow()
				t.Fatal("upgrade accepted")
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("err %v, response %v; want 401", err, resp)
			}
		})
	}
	conn, _, err := dialWS(ctx, f.srv.URL, c.token, sid)
	if err != nil {
		t.Fatalf("the right cookie and token: %v", err)
	}
	conn.Close(websocket.StatusNormalClosure, "")
}
