package ibkrsim

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// IBKR's streaming WebSocket (PROTOCOL.md §5.9): GET /v1/api/ws?oauth_token=…
// with the cookie api=<session from /tickle>; the upgrade is not signed.
// Messages from the client are IBKR's topic strings:
//
//	smd+265598+{"fields":["31","84","86"]}  subscribe to market data
//	umd+265598+{}                           unsubscribe
//	sor+{}  /  uor+{}                       subscribe to / drop order updates
//	tic                                     keep the session alive
//	ech+hb                                  echo (answered at once)
//
// The simulator answers with JSON objects carrying a "topic": "smd+<conid>"
// ticks with the subscribed fields, "sor" with the consumer's own orders (all
// of them at subscription, then each change), "system" heartbeats and "tic"
// answers. The socket closes with status 1008 once the session it was opened
// with ends: a new live session token, a logout or expiry.

// wsTickEvery is how often a socket streams ticks and looks for order
// changes; wsHeartbeatEvery spaces the "system" heartbeats.
const (
	wsTickEvery      = 200 * time.Millisecond
	wsHeartbeatEvery = 10 * time.Second
	wsMaxMessage     = 8 << 10
	wsMaxSubs        = 100
	wsMaxFields      = 50
)

// wsCommand is one parsed client message.
type wsCommand struct {
	topic  string // smd, umd, sor, uor, tic, ech
	conid  int
	fields []string
}

// parseWSCommand reads one client message. It never panics on input.
func parseWSCommand(msg []byte) (wsCommand, error) {
	m := bytes.TrimSpace(msg)
	switch {
	case string(m) == "tic":
		return wsCommand{topic: "tic"}, nil
	case bytes.HasPrefix(m, []byte("ech+")):
		return wsCommand{topic: "ech"}, nil
	case bytes.HasPrefix(m, []byte("sor")), bytes.HasPrefix(m, []byte("uor")):
		if rest := m[3:]; len(rest) > 0 && !bytes.HasPrefix(rest, []byte("+")) {
			return wsCommand{}, errors.New("malformed order topic")
		}
		return wsCommand{topic: string(m[:3])}, nil
	case bytes.HasPrefix(m, []byte("smd+")), bytes.HasPrefix(m, []byte("umd+")):
	default:
		return wsCommand{}, errors.New("unknown topic")
	}
	cmd := wsCommand{topic: string(m[:3])}
	rest := m[4:]
	idText, args, _ := bytes.Cut(rest, []byte("+"))
	id, err := strconv.Atoi(string(idText))
	if err != nil || id <= 0 || len(idText) > 12 {
		return wsCommand{}, errors.New("invalid conid")
	}
	cmd.conid = id
	if cmd.topic == "umd" {
		return cmd, nil
	}
	if len(bytes.TrimSpace(args)) > 0 {
		var body struct {
			Fields []json.RawMessage `json:"fields"`
		}
		if err := json.Unmarshal(args, &body); err != nil {
			return wsCommand{}, errors.New("malformed arguments")
		}
		if len(body.Fields) > wsMaxFields {
			return wsCommand{}, errors.New("too many fields")
		}
		for _, f := range body.Fields {
			var s string
			if json.Unmarshal(f, &s) != nil {
				var n int
				if json.Unmarshal(f, &n) != nil {
					return wsCommand{}, errors.New("fields must be strings or numbers")
				}
				s = strconv.Itoa(n)
			}
			cmd.fields = append(cmd.fields, s)
		}
	}
	if len(cmd.fields) == 0 {
		cmd.fields = defaultSnapshotFields()
	}
	return cmd, nil
}

// consumerByToken finds the consumer with access token tok.
func (s *Server) consumerByToken(tok string) *consumer {
	if tok == "" {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.consumers {
		if subtle.ConstantTimeCompare([]byte(c.token), []byte(tok)) == 1 {
			return c
		}
	}
	return nil
}

// wsSessionAlive reports whether the socket's session id is still the
// consumer's current one under a valid live session token. The caller
// holds c.mu.
func (c *consumer) wsSessionAlive(sid string, now time.Time) bool {
	return c.lst != nil && now.Before(c.lstExp) && c.apiSID != "" &&
		subtle.ConstantTimeCompare([]byte(c.apiSID), []byte(sid)) == 1
}

// serveWS authenticates the upgrade by the api cookie and oauth_token, then
// streams until the client leaves or the session ends.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, now time.Time) {
	c := s.consumerByToken(r.URL.Query().Get("oauth_token"))
	if c == nil {
		s.refuse(w, r, unauthorized("invalid token", "websocket: unknown oauth_token"))
		return
	}
	ck, err := r.Cookie("api")
	if err != nil {
		s.refuse(w, r, unauthorized("not authenticated", "websocket: no api cookie"))
		return
	}
	c.mu.Lock()
	ok := c.wsSessionAlive(ck.Value, now)
	c.mu.Unlock()
	if !ok {
		s.refuse(w, r, unauthorized("not authenticated", "websocket: api cookie is not the current session"))
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept answered the client already
	}
	conn.SetReadLimit(wsMaxMessage)
	ws := &wsConn{s: s, c: c, sid: ck.Value, conn: conn, subs: map[int][]string{}}
	ws.run(r.Context())
}

// wsConn is one simulated streaming socket.
type wsConn struct {
	s    *Server
	c    *consumer
	sid  string
	conn *websocket.Conn

	mu     sync.Mutex
	subs   map[int][]string // conid → fields
	orders bool
	seen   map[string]string // order id → last state sent
}

func (ws *wsConn) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer ws.conn.CloseNow()
	paper := len(ws.c.accounts) > 0 && ws.c.accounts[0].Paper
	ws.send(ctx, map[string]any{"topic": "system", "success": ws.c.key, "isFT": false, "isPaper": paper})
	ws.send(ctx, map[string]any{"topic": "sts", "args": map[string]any{"authenticated": true}})

	go func() {
		defer cancel()
		for {
			_, msg, err := ws.conn.Read(ctx)
			if err != nil {
				return
			}
			ws.handle(ctx, msg)
		}
	}()

	tick := time.NewTicker(wsTickEvery)
	defer tick.Stop()
	lastBeat := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := ws.s.clock()
		ws.c.mu.Lock()
		alive := ws.c.wsSessionAlive(ws.sid, now)
		ws.c.mu.Unlock()
		if !alive {
			ws.conn.Close(websocket.StatusPolicyViolation, "session ended")
			return
		}
		if time.Since(lastBeat) >= wsHeartbeatEvery {
			lastBeat = time.Now()
			ws.send(ctx, map[string]any{"topic": "system", "hb": now.UnixMilli()})
		}
		ws.streamTicks(ctx, now)
		ws.streamOrders(ctx)
	}
}

// send writes v as one text message; a failed write ends the socket.
func (ws *wsConn) send(ctx context.Context, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	if err := ws.conn.Write(ctx, websocket.MessageText, b); err != nil {
		ws.conn.CloseNow()
	}
}

// handle acts on one client message.
func (ws *wsConn) handle(ctx context.Context, msg []byte) {
	cmd, err := parseWSCommand(msg)
	if err != nil {
		ws.send(ctx, map[string]any{"topic": "error", "error": err.Error()})
		return
	}
	now := ws.s.clock()
	switch cmd.topic {
	case "tic":
		ws.c.mu.Lock()
		ws.s.touch(ws.c, now)
		ws.c.mu.Unlock()
		ws.send(ctx, map[string]any{"topic": "tic", "alive": true, "lastAccessed": now.UnixMilli()})
	case "ech":
		ws.send(ctx, map[string]any{"topic": "ech+hb", "alive": true})
	case "smd":
		if _, ok := ws.s.secs.byConid[cmd.conid]; !ok {
			ws.send(ctx, map[string]any{"topic": "smd+" + strconv.Itoa(cmd.conid), "error": fmt.Sprintf("unknown conid %d", cmd.conid)})
			return
		}
		ws.mu.Lock()
		if _, ok := ws.subs[cmd.conid]; !ok && len(ws.subs) >= wsMaxSubs {
			ws.mu.Unlock()
			ws.send(ctx, map[string]any{"topic": "error", "error": "too many market data subscriptions"})
			return
		}
		ws.subs[cmd.conid] = cmd.fields
		ws.mu.Unlock()
	case "umd":
		ws.mu.Lock()
		delete(ws.subs, cmd.conid)
		ws.mu.Unlock()
	case "sor":
		ws.mu.Lock()
		ws.orders, ws.seen = true, map[string]string{}
		ws.mu.Unlock()
		ws.streamOrders(ctx)
	case "uor":
		ws.mu.Lock()
		ws.orders, ws.seen = false, nil
		ws.mu.Unlock()
	}
}

// streamTicks sends one smd message per subscribed conid.
func (ws *wsConn) streamTicks(ctx context.Context, now time.Time) {
	ws.mu.Lock()
	subs := make(map[int][]string, len(ws.subs))
	for k, v := range ws.subs {
		subs[k] = v
	}
	ws.mu.Unlock()
	for conid, fields := range subs {
		sec := ws.s.secs.byConid[conid]
		msg := snapshotFields(sec, quoteOf(sec, now), fields)
		msg["topic"] = "smd+" + strconv.Itoa(conid)
		msg["conid"] = conid
		msg["conidEx"] = strconv.Itoa(conid)
		msg["server_id"] = "q0"
		msg["_updated"] = now.UnixMilli()
		msg["6119"] = "q0"
		ws.send(ctx, msg)
	}
}

// streamOrders sends the consumer's orders that changed since the last
// look (all of them right after subscribing); only the consumer's own
// accounts are read, so no socket sees another consumer's orders.
func (ws *wsConn) streamOrders(ctx context.Context) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if !ws.orders {
		return
	}
	var changed []map[string]any
	for _, b := range ws.c.books {
		b.mu.Lock()
		for _, o := range b.seq {
			state := o.status + "/" + strconv.FormatFloat(o.filled, 'f', -1, 64)
			if ws.seen[o.id] == state {
				continue
			}
			ws.seen[o.id] = state
			changed = append(changed, sorOrder(b.id, o))
		}
		b.mu.Unlock()
	}
	if len(changed) == 0 {
		return
	}
	b, err := json.Marshal(map[string]any{"topic": "sor", "args": changed})
	if err != nil {
		return
	}
	if err := ws.conn.Write(ctx, websocket.MessageText, b); err != nil {
		ws.conn.CloseNow()
	}
}

// sorOrder renders an order as IBKR's live-order fields; the caller holds
// the book's mu.
func sorOrder(acct string, o *order) map[string]any {
	oid, _ := strconv.ParseInt(o.id, 10, 64)
	m := map[string]any{
		"acct": acct, "conid": o.sec.Conid, "conidex": strconv.Itoa(o.sec.Conid), "orderId": oid,
		"order_ref": o.req.COID, "status": o.status, "filledQuantity": o.filled,
		"remainingQuantity": o.remaining(), "totalSize": o.req.Quantity, "side": o.req.Side,
		"ticker": o.sec.Ticker, "companyName": o.sec.Name, "secType": "STK",
		"orderType": orderTypeName(o.req.OrderType), "timeInForce": o.req.TIF,
		"lastExecutionTime_r": o.receivedAt.UnixMilli(),
	}
	if o.filled > 0 {
		m["avgPrice"] = priceString(o.avgPrice)
	}
	if o.req.HasPrice {
		m["price"] = priceString(o.req.Price)
	}
	return m
}
