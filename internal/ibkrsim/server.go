package ibkrsim

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// APIPrefix is the path under which IBKR's API is served, mirroring
// https://api.ibkr.com/v1/api.
const APIPrefix = "/v1/api"

// Config configures a Server. The zero value is usable: real clock, crypto/rand,
// IBKR's defaults for lifetimes and pacing.
type Config struct {
	// PublicBaseURL is the base URL clients address, e.g.
	// "https://api.ibkr.com/v1/api"; the signed URL is rebuilt from it. Empty
	// means scheme + Host header + request path.
	PublicBaseURL string
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Rand supplies DH exponents and ids; nil means crypto/rand.Reader. Reads
	// are serialized, so a deterministic reader can be shared.
	Rand io.Reader
	// LSTTTL is the lifetime of a live session token (default 24 h).
	LSTTTL time.Duration
	// SessionIdleTimeout ends a brokerage session that sees no request for that
	// long (default 6 minutes, as IBKR's gateway).
	SessionIdleTimeout time.Duration
	// TimestampWindow is the accepted clock skew of oauth_timestamp (default 5 min).
	TimestampWindow time.Duration
	// LenientQuerySigning also accepts signatures that exclude the query or
	// carry the raw query in the URL part.
	LenientQuerySigning bool
	// Logger receives one line per refused request; its zero value logs nothing.
	Logger zerolog.Logger
	// Pacing sets the rate limits.
	Pacing Pacing
	// Questions sets which reply questions orders trigger.
	Questions Questions
	// PartialFillFraction, when in (0,1), fills only that fraction of an order's
	// quantity (rounded down, at least 1); the rest of an auction order is then
	// cancelled and the rest of a DAY/GTC order keeps working.
	PartialFillFraction float64
	// Latency holds every IBKR API request (not the control API) this long
	// before it is served: IBKR is tens of milliseconds away from a server
	// in a data centre, and a benchmark on one machine should pay that.
	// It is an option of the simulator, not a fault: it never runs out.
	Latency time.Duration
	// FirstOrdersCallEmpty makes the first GET /iserver/account/orders of a
	// brokerage session answer an empty list, as IBKR sometimes does.
	FirstOrdersCallEmpty bool
	// PortfolioAccountsFirst refuses /portfolio/{acct}/positions and
	// /summary until GET /portfolio/accounts was called with the live
	// session token, as IBKR demands ("Please query /portfolio/accounts
	// first"); off, they are served regardless, as the pass-through's
	// front ends expect of a warmed-up session.
	PortfolioAccountsFirst bool
}

// Server is the simulator: an http.Handler serving IBKR's API under /v1/api and
// the control API under /sim.
type Server struct {
	cfg   Config
	clock func() time.Time
	log   zerolog.Logger

	randMu sync.Mutex
	rand   io.Reader

	mu        sync.RWMutex
	consumers map[string]*consumer
	books     map[string]*book

	faults  faultSet
	secs    *securities
	orderID atomic.Int64
	reqID   atomic.Int64
	api     *http.ServeMux
	control *http.ServeMux

	maintenance atomic.Bool  // IBKR is restarting: every API call gets 503
	clockOffset atomic.Int64 // the control API's move of the clock, in ns
	totals      totals
}

// New returns a Server with cfg's defaults filled in.
func New(cfg Config) *Server {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.LSTTTL <= 0 {
		cfg.LSTTTL = 24 * time.Hour
	}
	if cfg.SessionIdleTimeout <= 0 {
		cfg.SessionIdleTimeout = 6 * time.Minute
	}
	if cfg.TimestampWindow <= 0 {
		cfg.TimestampWindow = 5 * time.Minute
	}
	cfg.PublicBaseURL = strings.TrimSuffix(cfg.PublicBaseURL, "/")
	cfg.Pacing = cfg.Pacing.withDefaults()
	cfg.Questions = cfg.Questions.withDefaults()
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		rand:      cfg.Rand,
		consumers: make(map[string]*consumer),
		books:     make(map[string]*book),
		secs:      newSecurities(),
	}
	s.clock = s.now
	s.orderID.Store(1234567889)
	s.api = s.apiRoutes()
	s.control = s.controlRoutes()
	return s
}

// readRand fills p from the configured randomness source.
func (s *Server) readRand(p []byte) error {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	_, err := io.ReadFull(s.rand, p)
	return err
}

// ServeHTTP routes IBKR's API, the control API, and answers 404 otherwise.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/sim" || strings.HasPrefix(p, "/sim/"):
		s.control.ServeHTTP(w, r)
	case strings.HasPrefix(p, APIPrefix+"/") && s.maintenance.Load():
		writeError(w, http.StatusServiceUnavailable, maintenanceText)
	case strings.HasPrefix(p, APIPrefix+"/"):
		s.serveAPI(w, r)
	default:
		writeError(w, http.StatusNotFound, "Not Found")
	}
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"internal error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError answers IBKR's usual error shape {"error":…,"statusCode":…}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": msg, "statusCode": status})
}

// writeBareError answers {"error":…} without statusCode, the shape of IBKR's
// order-path rejections.
func writeBareError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// decodeJSON reads a JSON body of at most 1 MiB into v.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	return dec.Decode(v)
}
