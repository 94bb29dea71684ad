// Package httpapi is Ordertune's HTTP surface: routes, middleware, and the
// one place where errors become HTTP statuses. Echo's types stay inside
// this package.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ledger"
	"github.com/ordertune/ordertune/internal/logging"
	"github.com/ordertune/ordertune/internal/market"
	"github.com/ordertune/ordertune/internal/metrics"
	"github.com/ordertune/ordertune/internal/notify"
	"github.com/ordertune/ordertune/internal/passthrough"
	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/risk"
	"github.com/ordertune/ordertune/internal/trading"
)

// MaxBodyBytes bounds every request body; the largest legitimate one is a
// broker credential set with two PEM keys, far below this.
const MaxBodyBytes = 1 << 20

// Deps are the parts the HTTP layer drives.
type Deps struct {
	Log       zerolog.Logger
	Pool      *pgxpool.Pool
	Metrics   *metrics.Metrics // nil: a private set, still served at /metrics
	Auth      *auth.Service    // nil: every route that needs an account answers 503
	PublicURL string           // the URL users reach; https turns on Secure __Host- cookies
	Broker    *broker.Service  // nil: the broker routes answer 503 (no master key configured)
	Trading   *trading.Service // nil: the trading routes answer 503; main builds it (with trading.NoBroker when there is no broker)
	Risk      *risk.Service    // nil: built over Pool with the default ceilings (no Pool: the risk routes answer 503)
	// IBKRRoutes is the operator's IBKR pass-through allowlist; nil means
	// passthrough.DefaultRoutes().
	IBKRRoutes *passthrough.Allowlist
	// Market is the exchange's clock; nil means one with the default
	// cut-offs and IBKR's published restart windows.
	Market *market.Clock
	Notify *notify.Service // nil: the notification routes answer 503
	// Replication, when set, routes each tenant's IBKR-bound requests to
	// the replica owning the tenant's session lease; nil means one replica.
	Replication *Replication
	Ledger      *ledger.Service // nil: the positions, trades and P&L routes answer 503
}

// Server serves Ordertune's HTTP API.
type Server struct {
	e       *echo.Echo
	log     zerolog.Logger
	pool    *pgxpool.Pool
	metrics *metrics.Metrics
	broker  *broker.Service
	trading *trading.Service
	notify  *notify.Service
	risk    *risk.Service
	ledger  *ledger.Service
	market  *market.Clock
	drain   drainer // closed near the end of the shutdown grace
	ui      *webUI  // set by webRoutes; answers browsers' unknown pages
	repl    *Replication
	authLayer
}

// New builds the server and registers every route.
func New(d Deps) *Server {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	if d.Metrics == nil {
		d.Metrics = metrics.New()
	}
	if d.Market == nil {
		d.Market = market.Default()
	}
	s := &Server{e: e, log: d.Log, pool: d.Pool, metrics: d.Metrics, trading: d.Trading, market: d.Market}
	s.broker, s.notify, s.ledger = d.Broker, d.Notify, d.Ledger
	s.risk = d.Risk
	s.repl = d.Replication
	if s.risk == nil && d.Pool != nil {
		s.risk, _ = risk.New(risk.Config{Pool: d.Pool}) // the defaults are well formed
	}
	e.HTTPErrorHandler = s.handleError
	s.authLayer = newAuthLayer(d)
	// Only a proxy on this machine (nginx in deploy/) may name the client's
	// address; anyone else could forge X-Forwarded-For to dodge throttling.
	e.IPExtractor = echo.ExtractIPFromXFFHeader(echo.TrustLoopback(true), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false))
	e.Use(s.acceptForward, s.requestID, s.responseHeaders, s.accessLog, s.recoverPanic, s.bodyLimit, s.cleanQuery)
	e.Use(s.csrf, s.authorize, s.routeTenant)
	s.routes()
	s.ibkrRoutes(d.IBKRRoutes)
	return s
}

// Handler returns the server as an http.Handler (tests drive it directly).
func (s *Server) Handler() http.Handler { return s.e }

// routes registers every route. Each feature adds its own group here.
func (s *Server) routes() {
	s.e.GET("/healthz", s.healthz)
	s.e.GET("/readyz", s.readyz)
	s.e.GET("/metrics", echo.WrapHandler(s.metrics.Handler()))
	s.openAPIRoute()
	s.webRoutes()
	s.authRoutes()
	s.adminAuthRoutes()
	s.brokerRoutes()
	s.brokerAnswerRoutes()
	s.tradingRoutes()
	s.riskRoutes()
	s.marketRoutes()
	s.notifyRoutes()
	s.ledgerRoutes()
	s.resetRoutes()
}

// Serve accepts connections on l until ctx ends, then shuts down gracefully:
// new connections are refused and requests in flight get up to grace to
// finish. Confirms still waiting for IBKR shortly before the grace ends
// are answered 202 with their confirmation; reconciliation settles them.
func (s *Server) Serve(ctx context.Context, l net.Listener, grace time.Duration) error {
	srv := &http.Server{
		Handler:           s.e,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	s.log.Info().Msg("shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	// Shortly before the grace ends, confirms still waiting for IBKR
	// answer with their confirmation (202) rather than being cut off.
	drain := time.AfterFunc(grace-drainMargin(grace), s.drain.start)
	defer drain.Stop()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	st, err := postgres.PoolState(ctx, s.pool)
	if err != nil {
		return errs.Wrap(err, errs.Unavailable, "database unreachable")
	}
	if !st.Current() {
		return errs.E(errs.Unavailable, "database schema not current: %s", st.Problem())
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ready", "schema_version": st.Version})
}

const ctxRequestID = "request_id"

// validRequestID accepts ids set by a proxy in front (nginx's $request_id)
// while keeping arbitrary bytes out of logs and responses.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !validRequestID.MatchString(id) {
			b := make([]byte, 12)
			rand.Read(b)
			id = hex.EncodeToString(b)
		}
		c.Set(ctxRequestID, id)
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		// The request's logger: every feature's log line of this request
		// carries its id (and, once authenticated, the user's).
		req := c.Request()
		c.SetRequest(req.WithContext(logging.WithLogger(req.Context(), s.log.With().Str("request_id", id).Logger())))
		return next(c)
	}
}

func requestID(c echo.Context) string {
	id, _ := c.Get(ctxRequestID).(string)
	return id
}

// reqLog returns the request's logger (request id, user id), or the
// server's outside a request.
func (s *Server) reqLog(c echo.Context) *zerolog.Logger {
	l := logging.FromContext(c.Request().Context(), s.log)
	return &l
}

// logWith adds fields to the request's logger.
func logWith(c echo.Context, add func(zerolog.Context) zerolog.Context) {
	req := c.Request()
	c.SetRequest(req.WithContext(logging.With(req.Context(), zerolog.Nop(), add)))
}

// accessLog writes one line per request. It logs the path without the
// query, and never headers or bodies: they carry cookies, tokens and
// credentials.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // write the problem now so the status below is final
		}
		req, res := c.Request(), c.Response()
		s.metrics.ObserveHTTP(c.Path(), req.Method, res.Status, time.Since(start))
		s.reqLog(c).Info().
			Str("method", req.Method).
			Str("path", logPath(req.URL.Path)).
			Str("route", c.Path()).
			Int("status", res.Status).
			Int64("bytes", res.Size).
			Dur("latency", time.Since(start)).
			Str("remote_ip", c.RealIP()).
			Msg("request")
		return nil
	}
}

// logPath is the path as the access log shows it: below the IBKR
// pass-through, account ids are masked whatever became of the request
// (refused by the allowlist, the authorization or the method).
func logPath(p string) string {
	if strings.HasPrefix(p, apiPrefix+ibkrPrefix+"/") {
		return passthrough.RedactPath(p)
	}
	return p
}

// recoverPanic turns a handler panic into a 500 problem; the stack goes to
// the log, never to the client.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.reqLog(c).Error().Interface("panic", r).
					Bytes("stack", debug.Stack()).Msg("handler panicked")
				err = &errs.Error{Code: errs.Internal, Err: fmt.Errorf("panic: %v", r)}
			}
		}()
		return next(c)
	}
}

func (s *Server) bodyLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.ContentLength > MaxBodyBytes {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge)
		}
		req.Body = http.MaxBytesReader(c.Response(), req.Body, MaxBodyBytes)
		return next(c)
	}
}
