package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/lease"
	"github.com/ordertune/ordertune/internal/seal"
)

// Replication is what a deployment of several replicas gives the HTTP
// layer: the session leases that say which replica serves a tenant's IBKR
// session, and the key ring that authenticates forwards between replicas.
type Replication struct {
	Leases *lease.Manager
	// Ring signs and verifies forwarded requests: every replica has the
	// same ORDERTUNE_MASTER_KEYS, and a MAC by any key of the ring counts,
	// so forwards keep working through a key rotation.
	Ring *seal.Ring
	// OnForward, when set, is told each forward's result: "ok" (the
	// owner answered) or "owner_unreachable".
	OnForward func(result string)
}

// tenantRoutes are the routes that act on the caller's IBKR session (or
// replace it): only the replica owning the tenant's session lease serves
// them; another replica forwards them there. Test Connection and the
// credential routes are here because they supersede or drop the owner's
// session.
var tenantRoutes = map[string]bool{
	routeKey(http.MethodPut, apiPrefix+"/broker/active"):             true,
	routeKey(http.MethodPut, apiPrefix+"/broker/:mode"):              true,
	routeKey(http.MethodPost, apiPrefix+"/broker/:mode/test"):        true,
	routeKey(http.MethodDelete, apiPrefix+"/broker/:mode"):           true,
	routeKey(http.MethodGet, apiPrefix+"/signals/:id/preview"):       true,
	routeKey(http.MethodPost, apiPrefix+"/signals/:id/confirm"):      true,
	routeKey(http.MethodPost, apiPrefix+"/confirmations/:id/cancel"): true,
	routeKey(http.MethodGet, apiPrefix+ibkrPrefix+"/ws"):             true,
	routeKey(http.MethodGet, apiPrefix+ibkrPrefix+"/*"):              true,
}

// forwardHeader carries a forwarded request's proof of origin: which
// replica sent it, when, for whom (the client's address) and a MAC over
// those and the request line.
const forwardHeader = "X-Ordertune-Forwarded"

// forwardMACLabel separates these MACs from any other use of the ring.
const forwardMACLabel = "ordertune/forward/v1"

// forwardSkew is how old (or how far ahead) a forward may be.
const forwardSkew = time.Minute

// forwardedWorkTimeout bounds a forwarded request that its sender no
// longer waits for: about a confirm's longest.
const forwardedWorkTimeout = 60 * time.Second

// ctxForwardedFrom is set on a request another replica forwarded here.
const ctxForwardedFrom = "forwarded_from"

// forwardProof is a parsed forwardHeader.
type forwardProof struct {
	keyID, from, clientIP string
	ts                    int64
	mac                   []byte
}

// forwardMessage is what a forward's MAC covers.
func forwardMessage(p forwardProof, method, path string) []byte {
	return []byte(strings.Join([]string{p.from, strconv.FormatInt(p.ts, 10), p.clientIP, method, path}, "\n"))
}

// formatForward renders p as the header's value.
func formatForward(p forwardProof) string {
	return fmt.Sprintf("v1 key=%s from=%s ts=%d ip=%s mac=%s", p.keyID, p.from, p.ts, p.clientIP,
		base64.RawURLEncoding.EncodeToString(p.mac))
}

// parseForward parses the header's value; it refuses anything but exactly
// the five fields, each well formed.
func parseForward(v string) (forwardProof, bool) {
	var p forwardProof
	f := strings.Split(v, " ")
	if len(f) != 6 || f[0] != "v1" {
		return p, false
	}
	want := []string{"key", "from", "ts", "ip", "mac"}
	vals := make([]string, len(want))
	for i, kv := range f[1:] {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k != want[i] || val == "" || len(val) > 128 {
			return p, false
		}
		vals[i] = val
	}
	ts, err := strconv.ParseInt(vals[2], 10, 64)
	if err != nil {
		return p, false
	}
	ip, err := netip.ParseAddr(vals[3])
	if err != nil {
		return p, false
	}
	mac, err := base64.RawURLEncoding.DecodeString(vals[4])
	if err != nil || len(mac) != 32 {
		return p, false
	}
	for _, r := range vals[0] + vals[1] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return p, false
		}
	}
	return forwardProof{keyID: vals[0], from: vals[1], ts: ts, clientIP: ip.String(), mac: mac}, true
}

// acceptForward recognises a request another replica forwarded here: with
// a valid proof it is served here whoever holds the lease (never forwarded
// again), and the client's address is the one the proof names. A missing
// or invalid proof is dropped and the request served like any other.
func (s *Server) acceptForward(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		v := req.Header.Get(forwardHeader)
		if v == "" {
			return next(c)
		}
		req.Header.Del(forwardHeader)
		p, ok := parseForward(v)
		if !ok || s.repl == nil || s.repl.Ring == nil {
			return next(c)
		}
		age := time.Since(time.Unix(p.ts, 0))
		if age > forwardSkew || age < -forwardSkew || !s.repl.Ring.VerifyMAC(p.keyID, forwardMACLabel, forwardMessage(p, req.Method, req.URL.Path), p.mac) {
			s.reqLog(c).Warn().Str("from", p.from).Msg("a forwarded request's proof does not verify; served as a direct request")
			return next(c)
		}
		// The forwarding replica may die while this one works (that is
		// when forwards matter most): the work goes on to its end, so
		// the client's retry finds its outcome rather than a half-done
		// confirm. The server's write timeout still bounds it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), forwardedWorkTimeout)
		defer cancel()
		req = req.WithContext(ctx)
		c.SetRequest(req)
		req.RemoteAddr = net.JoinHostPort(p.clientIP, "0")
		req.Header.Del(echo.HeaderXForwardedFor)
		req.Header.Del(echo.HeaderXRealIP)
		c.Set(ctxForwardedFrom, p.from)
		return next(c)
	}
}

// forwardPoll is how often a request for a tenant whose owner does not
// answer asks again who owns it.
const forwardPoll = 250 * time.Millisecond

// routeTenant serves a tenant route here when this replica owns (or can
// take) the tenant's session lease, and forwards it to the owner
// otherwise. A lease held here costs nothing (memory); an owner that does
// not answer (killed, or shutting down) is waited out — until it releases
// its leases or they expire — and the request is then served here or by
// the new owner. Resending is safe: nothing was answered, a confirm carries
// its Idempotency-Key, and the other tenant routes repeat harmlessly.
func (s *Server) routeTenant(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.repl == nil || s.broker == nil || !tenantRoutes[routeKey(c.Request().Method, c.Path())] {
			return next(c)
		}
		if _, ok := c.Get(ctxForwardedFrom).(string); ok {
			return next(c)
		}
		userID := principal(c).UserID
		if userID == "" || s.repl.Leases.HeldUser(userID) {
			return next(c)
		}
		req := c.Request()
		ctx := req.Context()
		mode, err := s.broker.ActiveMode(ctx, userID)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return errs.Wrap(err, errs.Invalid, "the request body could not be read")
		}
		req.Body.Close()
		k := lease.Key{UserID: userID, Mode: string(mode)}
		deadline := time.Now().Add(s.repl.Leases.TTL() + 5*time.Second)
		for {
			req.Body = io.NopCloser(bytes.NewReader(body))
			owner, here, err := s.repl.Leases.Route(ctx, k)
			if err != nil && !errors.Is(err, lease.ErrDraining) {
				return errs.Wrap(err, errs.Unavailable, "")
			}
			if here {
				return next(c)
			}
			if err == nil {
				ferr := s.forwardTo(c, owner, body)
				if ferr == nil {
					s.forwarded("ok")
					return nil
				}
				s.forwarded("owner_unreachable")
				s.repl.Leases.Forget(k)
				s.reqLog(c).Info().Err(ferr).Str("owner", owner.Replica).Msg("the tenant's replica did not answer; waiting for its lease to pass")
			}
			if time.Now().After(deadline) {
				return &errs.Error{Code: errs.BrokerUnavailable, RetryAfter: time.Second,
					Message: "this account's IBKR session is moving to another server; try again in a moment"}
			}
			t := time.NewTimer(forwardPoll)
			select {
			case <-ctx.Done():
				t.Stop()
				return errs.Wrap(ctx.Err(), errs.Unavailable, "")
			case <-t.C:
			}
		}
	}
}

func (s *Server) forwarded(result string) {
	if s.repl.OnForward != nil {
		s.repl.OnForward(result)
	}
}

// forwardTransport reaches the other replicas: a replica that is gone
// fails fast, a busy one may take as long as a confirm does.
var forwardTransport = &http.Transport{
	DialContext:         (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
	MaxIdleConnsPerHost: 64,
	IdleConnTimeout:     30 * time.Second,
}

// errNoAnswer is a forward that got no response from the owner.
type errNoAnswer struct{ err error }

func (e errNoAnswer) Error() string { return "no answer from the owner: " + e.err.Error() }

// forwardTo sends the request to owner and relays its answer. It returns
// an error only when the owner gave no answer at all, so that nothing was
// written and the caller may try elsewhere.
func (s *Server) forwardTo(c echo.Context, owner lease.Owner, body []byte) error {
	target, err := url.Parse(owner.URL)
	if err != nil || target.Host == "" {
		return errNoAnswer{fmt.Errorf("owner URL %q: %v", owner.URL, err)}
	}
	clientIP := c.RealIP()
	if _, perr := netip.ParseAddr(clientIP); perr != nil {
		clientIP = "0.0.0.0"
	}
	var failed error
	rp := &httputil.ReverseProxy{
		Transport: forwardTransport,
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the owner checks Origin against Host (CSRF)
			p := forwardProof{from: s.repl.Leases.Replica(), ts: time.Now().Unix(), clientIP: clientIP}
			p.keyID, p.mac = s.repl.Ring.MAC(forwardMACLabel, forwardMessage(p, r.Out.Method, r.Out.URL.Path))
			r.Out.Header.Set(forwardHeader, formatForward(p))
			r.Out.Header.Set(echo.HeaderXRequestID, requestID(c)) // one id in both replicas' logs
			r.Out.ContentLength = int64(len(body))
			r.Out.Body = io.NopCloser(bytes.NewReader(body))
			r.Out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		},
		ErrorHandler: func(_ http.ResponseWriter, _ *http.Request, err error) { failed = err },
	}
	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	rp.ServeHTTP(c.Response(), c.Request().WithContext(ctx))
	if failed != nil {
		if c.Response().Committed {
			// The owner's answer broke off after it began: it is relayed
			// as far as it came; the client retries with its key.
			return nil
		}
		return errNoAnswer{failed}
	}
	return nil
}
