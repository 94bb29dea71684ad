package passthrough

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/logging"
)

// Close codes the bridge ends a browser's socket with, beyond the standard
// ones. A browser reconnects after CloseSessionRenewed and
// CloseUpstreamGone (with a back-off); 1000 and 1001 are the usual ones.
const (
	// CloseSessionRenewed: the tenant's IBKR session was renewed or
	// dropped; reconnect to stream on the new one.
	CloseSessionRenewed websocket.StatusCode = 4001
	// CloseUpstreamGone: IBKR closed its side or stopped answering.
	CloseUpstreamGone websocket.StatusCode = 4002
)

// BridgeConfig tunes the WebSocket bridge. Zero fields take the defaults.
type BridgeConfig struct {
	// HTTPClient dials IBKR's WebSocket (nil: http.DefaultClient).
	HTTPClient *http.Client
	// HeartbeatEvery is how often the bridge pings the browser and sends
	// IBKR its "tic" keep-alive (default 25 s; IBKR wants one a minute).
	HeartbeatEvery time.Duration
	// CheckEvery is how often the bridge looks whether the tenant's session
	// was renewed (default 2 s).
	CheckEvery time.Duration
	// Topics are the message topics a browser may send (the text before the
	// first '+'); nil means DefaultTopics.
	Topics []string
	// OriginPatterns are extra origins allowed to open the socket; the
	// request's own host always is.
	OriginPatterns []string
}

// DefaultTopics returns what a browser may send on the bridge: market data
// and order updates, their unsubscriptions, P&L and trades, and keep-alives.
func DefaultTopics() []string {
	return []string{"smd", "umd", "sor", "uor", "spl", "upl", "str", "utr", "tic", "ech"}
}

func (c BridgeConfig) withDefaults() BridgeConfig {
	if c.HTTPClient == nil {
		c.HTTPClient = http.DefaultClient
	}
	if c.HeartbeatEvery <= 0 {
		c.HeartbeatEvery = 25 * time.Second
	}
	if c.CheckEvery <= 0 {
		c.CheckEvery = 2 * time.Second
	}
	if c.Topics == nil {
		c.Topics = DefaultTopics()
	}
	return c
}

// Message size limits: what a browser sends is a short topic string; IBKR's
// messages can carry many orders.
const (
	maxBrowserMessage  = 8 << 10
	maxUpstreamMessage = 1 << 20
)

// Bridges returns how many WebSocket bridges are open.
func (p *Proxy) Bridges() int64 { return p.bridges.Load() }

// ServeWebSocket upgrades r to a WebSocket and bridges it to IBKR's stream
// with userID's session: the api cookie from a tickle and the access token
// (PROTOCOL.md §5.9). IBKR's frames reach the browser unchanged (text or
// binary); the browser's text messages go to IBKR unchanged when their topic
// is allowed, and anything else (another topic, a binary frame) is answered
// with {"topic":"error",...} and not sent on. The bridge pings the browser and
// tickles IBKR's socket every HeartbeatEvery, and it closes both sides when
// either goes away, when ctx of the request ends, or when the tenant's
// session is renewed (CloseSessionRenewed). An error is returned only when
// the upgrade did not happen, and then nothing was written to w.
func (p *Proxy) ServeWebSocket(w http.ResponseWriter, r *http.Request, userID string) error {
	ctx := r.Context()
	// Refuse what the upgrade would refuse before IBKR is asked anything.
	if !isUpgrade(r) {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "WebSocket upgrade required", http.StatusUpgradeRequired)
		return nil
	}
	if !originAllowed(r, p.ws.OriginPatterns) {
		http.Error(w, "WebSocket origin not allowed", http.StatusForbidden)
		return nil
	}
	var sess *ibkr.Session
	dctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var up *websocket.Conn
	err := p.sessions.Do(dctx, userID, func(ctx context.Context, s *ibkr.Session, _ broker.Conn) error {
		t, err := p.target(ctx, userID, s)
		if err != nil {
			return err
		}
		conn, resp, err := websocket.Dial(ctx, t.URL, &websocket.DialOptions{HTTPHeader: t.Header, HTTPClient: p.ws.HTTPClient})
		if err != nil {
			p.sids.forget(userID)
			if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusGone) {
				return &ibkr.Error{Kind: ibkr.KindTokenExpired, Op: "open IBKR stream", Method: http.MethodGet, Endpoint: "/ws", Status: resp.StatusCode}
			}
			return &ibkr.Error{Kind: ibkr.KindUnavailable, Op: "open IBKR stream", Method: http.MethodGet, Endpoint: "/ws", Err: err}
		}
		sess, up = s, conn
		return nil
	})
	if err != nil {
		return p.asError(err, "ws")
	}
	// The HTTP server's read and write timeouts would cut a long-lived
	// socket; the bridge has its own heartbeats instead.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	down, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: p.ws.OriginPatterns})
	if err != nil {
		up.CloseNow()
		// Accept has answered the browser (a bad handshake or origin).
		log := logging.FromContext(r.Context(), p.log)
		log.Info().Err(err).Msg("passthrough: websocket upgrade refused")
		return nil
	}
	p.bridges.Add(1)
	defer p.bridges.Add(-1)
	b := &bridge{p: p, userID: userID, sess: sess, up: up, down: down}
	b.run(ctx)
	return nil
}

// target returns how to open IBKR's socket with s: the session id of an
// earlier tickle under the same token when there is one, else a tickle's.
// A tickle paced out by IBKR (1 per second) is tried once more.
func (p *Proxy) target(ctx context.Context, userID string, s *ibkr.Session) (ibkr.WebSocketTarget, error) {
	fp := fingerprint(s.Token().Value)
	if sid, ok := p.sids.get(userID, fp); ok {
		return s.WebSocketWith(sid), nil
	}
	// Sockets opened together share one tickle.
	v, err, _ := p.tickles.Do(userID+"\x00"+string(fp[:]), func() (any, error) {
		for attempt := 0; ; attempt++ {
			t, err := s.WebSocket(ctx)
			var ie *ibkr.Error
			if attempt == 0 && errors.As(err, &ie) && ie.Kind == ibkr.KindRateLimited && ie.RetryAfter <= 2*time.Second {
				timer := time.NewTimer(max(ie.RetryAfter, 100*time.Millisecond))
				select {
				case <-ctx.Done():
					timer.Stop()
					return nil, ctx.Err()
				case <-timer.C:
				}
				continue
			}
			if err != nil {
				return nil, err
			}
			if c, err := (&http.Request{Header: t.Header}).Cookie("api"); err == nil {
				p.sids.put(userID, fp, c.Value)
			}
			return t, nil
		}
	})
	if err != nil {
		return ibkr.WebSocketTarget{}, err
	}
	return v.(ibkr.WebSocketTarget), nil
}

// bridge is one browser socket joined to one IBKR socket.
type bridge struct {
	p        *Proxy
	userID   string
	sess     *ibkr.Session
	up, down *websocket.Conn
}

// closeReason is how one side's end closes the other.
type closeReason struct {
	code   websocket.StatusCode
	reason string
}

func (b *bridge) run(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	b.up.SetReadLimit(maxUpstreamMessage)
	b.down.SetReadLimit(maxBrowserMessage)
	done := make(chan closeReason, 3)
	go func() { done <- b.upToDown(ctx) }()
	go func() { done <- b.downToUp(ctx) }()
	go func() { done <- b.watch(ctx) }()
	var why closeReason
	select {
	case why = <-done:
	case <-parent.Done():
		why = closeReason{websocket.StatusGoingAway, "server shutting down"}
	}
	// Close both sides before cancelling ctx: the library drops a
	// connection whose read context ends, which would lose the close
	// frame that tells the browser why. A side already gone returns at once.
	b.down.Close(why.code, why.reason)
	b.up.Close(websocket.StatusNormalClosure, "")
	cancel()
	b.up.CloseNow()
	b.down.CloseNow()
}

// upToDown relays IBKR's messages to the browser.
func (b *bridge) upToDown(ctx context.Context) closeReason {
	for {
		typ, msg, err := b.up.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusPolicyViolation {
				return closeReason{CloseSessionRenewed, "IBKR session ended; reconnect"}
			}
			return closeReason{CloseUpstreamGone, "IBKR stream closed; reconnect"}
		}
		if err := b.down.Write(ctx, typ, msg); err != nil {
			return closeReason{websocket.StatusGoingAway, ""}
		}
	}
}

// downToUp relays the browser's messages to IBKR, keeping to the allowed
// topics.
func (b *bridge) downToUp(ctx context.Context) closeReason {
	for {
		typ, msg, err := b.down.Read(ctx)
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				return closeReason{websocket.StatusMessageTooBig, "message too big"}
			}
			return closeReason{websocket.StatusNormalClosure, ""}
		}
		if typ != websocket.MessageText || !b.allowed(msg) {
			if err := b.down.Write(ctx, websocket.MessageText, []byte(`{"topic":"error","error":"message not allowed through Ordertune"}`)); err != nil {
				return closeReason{websocket.StatusGoingAway, ""}
			}
			continue
		}
		if err := b.up.Write(ctx, typ, msg); err != nil {
			return closeReason{CloseUpstreamGone, "IBKR stream closed; reconnect"}
		}
	}
}

// allowed reports whether a browser message's topic is allowed: the text
// up to the first '+', or the whole message ("tic").
func (b *bridge) allowed(msg []byte) bool {
	topic, _, _ := bytes.Cut(bytes.TrimSpace(msg), []byte("+"))
	for _, t := range b.p.ws.Topics {
		if string(topic) == t {
			return true
		}
	}
	return false
}

// watch sends heartbeats and ends the bridge once the tenant's session is
// no longer the one the bridge was opened with.
func (b *bridge) watch(ctx context.Context) closeReason {
	beat := time.NewTicker(b.p.ws.HeartbeatEvery)
	defer beat.Stop()
	check := time.NewTicker(b.p.ws.CheckEvery)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return closeReason{websocket.StatusGoingAway, ""}
		case <-check.C:
			if !b.p.sessions.Current(b.userID, b.sess) {
				return closeReason{CloseSessionRenewed, "IBKR session renewed; reconnect"}
			}
		case <-beat.C:
			pctx, cancel := context.WithTimeout(ctx, b.p.ws.HeartbeatEvery)
			err := b.down.Ping(pctx)
			cancel()
			if err != nil {
				return closeReason{websocket.StatusGoingAway, "no pong"}
			}
			if err := b.up.Write(ctx, websocket.MessageText, []byte("tic")); err != nil {
				return closeReason{CloseUpstreamGone, "IBKR stream closed; reconnect"}
			}
		}
	}
}

// isUpgrade reports whether r asks for a WebSocket upgrade.
func isUpgrade(r *http.Request) bool {
	return headerHas(r.Header, "Connection", "upgrade") && headerHas(r.Header, "Upgrade", "websocket")
}

// headerHas reports whether a comma-separated header holds token, in any
// case.
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// originAllowed reports whether a browser's Origin is the request's own
// host or matches one of patterns (path.Match on the host), the rule the
// WebSocket library applies in Accept; no Origin (not a browser) passes.
func originAllowed(r *http.Request, patterns []string) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(u.Host)); ok {
			return true
		}
	}
	return false
}
