package passthrough

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"

	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/logging"
)

// Sessions hands out tenants' ready IBKR sessions; *broker.Cache is one.
type Sessions interface {
	// Do runs fn with the user's ready session and repeats it once after
	// repairing the session when fn fails with a 401, "no bridge" or
	// "query /accounts first".
	Do(ctx context.Context, userID string, fn func(ctx context.Context, s *ibkr.Session, conn broker.Conn) error) error
	// Current reports whether s still carries the user's cached token.
	Current(userID string, s *ibkr.Session) bool
}

// Config configures a Proxy. Zero fields take the defaults.
type Config struct {
	// Sessions is the broker session cache.
	Sessions Sessions
	// Routes is the allowlist; nil means DefaultRoutes.
	Routes *Allowlist
	// Timeout bounds one forwarded request, pacing wait included (default
	// 20 s).
	Timeout time.Duration
	// Log receives failures; never a token, cookie or account id.
	Log zerolog.Logger
	// WebSocket tunes the streaming bridge.
	WebSocket BridgeConfig
}

// Proxy forwards tenants' requests to IBKR. It is safe for concurrent use.
type Proxy struct {
	sessions Sessions
	routes   *Allowlist
	timeout  time.Duration
	log      zerolog.Logger
	ws       BridgeConfig

	bridges atomic.Int64
	sids    sidCache
	tickles singleflight.Group
}

// New returns a Proxy.
func New(cfg Config) (*Proxy, error) {
	if cfg.Sessions == nil {
		return nil, errors.New("passthrough: a session cache is required")
	}
	p := &Proxy{sessions: cfg.Sessions, routes: cfg.Routes, timeout: cfg.Timeout, log: cfg.Log, ws: cfg.WebSocket.withDefaults()}
	if p.routes == nil {
		var err error
		if p.routes, err = ParseAllowlist(DefaultRoutes()); err != nil {
			return nil, err
		}
	}
	if p.timeout <= 0 {
		p.timeout = 20 * time.Second
	}
	return p, nil
}

// Routes returns the allowlist in force.
func (p *Proxy) Routes() *Allowlist { return p.routes }

// maxQuery bounds a forwarded query string.
const maxQuery = 4 << 10

// errorPeek bounds how much of an IBKR error answer is read to classify it
// ("no bridge" and friends); error bodies are small.
const errorPeek = 16 << 10

// Forward relays one GET request for userID to IBKR and streams IBKR's
// answer to w: status, body and headers unchanged except hop-by-hop ones
// and Set-Cookie (IBKR's cookies are the tenant's session, never the
// browser's). path is the escaped path below IBKR's base URL, e.g.
// "portfolio/DU1234567/summary".
//
// Before anything reaches IBKR the path must be on the allowlist and every
// account it names (in the path or an account query parameter) the
// tenant's own; otherwise the error is errs.Forbidden. IBKR's 401 gets one
// new handshake and one retry (these calls are read-only); a second 401 is
// errs.BrokerTokenExpired. A 429 passes through with a Retry-After. When
// Forward returns an error nothing was written to w.
func (p *Proxy) Forward(w http.ResponseWriter, r *http.Request, userID, path string) error {
	if r.Method != http.MethodGet {
		return errs.E(errs.Invalid, "only GET requests pass through to IBKR")
	}
	m, err := p.routes.Match(path)
	if err != nil {
		return errs.Wrap(err, errs.Forbidden, ErrNotAllowed.Error())
	}
	if len(r.URL.RawQuery) > maxQuery {
		return errs.E(errs.Invalid, "query string too long")
	}
	// Before any session is made: IBKR would refuse such a request's
	// signature, and each refusal would cost a new handshake.
	if err := CheckRawQuery(r.URL.RawQuery); err != nil {
		return errs.Wrap(err, errs.Invalid, "the query string holds a character that must be percent-encoded (such as #, a space or a quote)")
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.timeout)
	defer cancel()
	hdr := http.Header{"Accept": {"application/json"}}
	var resp *http.Response
	err = p.sessions.Do(ctx, userID, func(ctx context.Context, s *ibkr.Session, conn broker.Conn) error {
		endpoint, err := m.Endpoint(conn.AccountID)
		if err != nil {
			return errs.Wrap(err, errs.Forbidden, err.Error())
		}
		query, err := CheckQuery(r.URL.RawQuery, conn.AccountID)
		if errors.Is(err, ErrForeignAccount) {
			return errs.Wrap(err, errs.Forbidden, err.Error())
		}
		if err != nil {
			return errs.Wrap(err, errs.Invalid, "malformed query string")
		}
		res, err := s.Forward(ctx, http.MethodGet, endpoint, query, hdr)
		if err != nil {
			return err
		}
		if kerr := classify(res, m.Pattern); kerr != nil {
			res.Body.Close()
			return kerr
		}
		resp = res
		return nil
	})
	if err != nil {
		return p.asError(err, m.Pattern)
	}
	defer resp.Body.Close()
	copyHeaders(w.Header(), resp.Header)
	if resp.StatusCode == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil && ctx.Err() == nil {
		// The status is out: all that is left is to tell the log.
		log := logging.FromContext(ctx, p.log)
		log.Warn().Str("route", m.Pattern).Err(err).Msg("passthrough: answer cut short")
	}
	return nil
}

// classify turns the IBKR answers that the session cache repairs (401/410:
// a new LST; "no bridge": a new brokerage session; "Please query /accounts
// first") into *ibkr.Error values, so Do repairs and retries. Any other
// answer streams through; a peeked body is put back in front.
func classify(res *http.Response, pattern string) error {
	e := &ibkr.Error{Op: "forward " + pattern, Method: http.MethodGet, Endpoint: pattern, Status: res.StatusCode}
	switch res.StatusCode {
	case http.StatusUnauthorized, http.StatusGone:
		e.Kind, e.Text = ibkr.KindTokenExpired, "IBKR refused the live session token"
		return e
	case http.StatusBadRequest, http.StatusInternalServerError, http.StatusServiceUnavailable:
	default:
		return nil
	}
	peek, err := io.ReadAll(io.LimitReader(res.Body, errorPeek))
	res.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(peek), res.Body), res.Body}
	if err != nil {
		return nil
	}
	lower := strings.ToLower(string(peek))
	switch {
	case strings.Contains(lower, "no bridge"):
		e.Kind, e.Text = ibkr.KindNoBrokerageSession, "no brokerage session"
	case strings.Contains(lower, "query /accounts first"):
		e.Kind, e.Text = ibkr.KindAccountsNotQueried, "accounts not queried"
	default:
		return nil
	}
	return e
}

// asError gives a failure that kept anything from being relayed its place
// in the error vocabulary.
func (p *Proxy) asError(err error, pattern string) error {
	if errs.As(err) != nil {
		return err
	}
	var ie *ibkr.Error
	if !errors.As(err, &ie) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return errs.Wrap(err, errs.BrokerUnavailable, "IBKR did not answer in time")
		}
		return errs.Wrap(err, errs.Internal, "")
	}
	var e *errs.Error
	switch ie.Kind {
	case ibkr.KindTokenExpired:
		e = errs.Wrap(err, errs.BrokerTokenExpired, "IBKR refused the session even after a new handshake; try again shortly")
	case ibkr.KindNoBrokerageSession, ibkr.KindAccountsNotQueried:
		e = errs.Wrap(err, errs.BrokerNotConnected, "the IBKR brokerage session could not be opened; try again shortly")
	case ibkr.KindRateLimited:
		e = errs.Wrap(err, errs.BrokerRateLimited, "IBKR's request budget for your account is in use; try again shortly")
		e.RetryAfter = ie.RetryAfter
		if e.RetryAfter <= 0 {
			e.RetryAfter = time.Second
		}
	case ibkr.KindRequestFailed:
		e = errs.Wrap(err, errs.Invalid, "the request cannot be sent to IBKR")
	default:
		e = errs.Wrap(err, errs.BrokerUnavailable, "IBKR is not reachable right now")
	}
	return e
}

// hopHeaders are the hop-by-hop headers of RFC 9110 §7.6.1, which a proxy
// must not forward, plus Set-Cookie: IBKR's cookies belong to the tenant's
// IBKR session and must not land on Ordertune's origin.
func hopHeaders() []string {
	return []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Set-Cookie"}
}

// copyHeaders copies IBKR's response headers except the hop-by-hop ones
// and those the Connection header names.
func copyHeaders(dst, src http.Header) {
	drop := map[string]bool{}
	for _, h := range hopHeaders() {
		drop[h] = true
	}
	for _, v := range src.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			drop[http.CanonicalHeaderKey(strings.TrimSpace(name))] = true
		}
	}
	for k, vs := range src {
		if drop[http.CanonicalHeaderKey(k)] {
			continue
		}
		dst[k] = append([]string(nil), vs...)
	}
}
