package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/config"
	"github.com/ordertune/ordertune/internal/httpapi"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/logging"
	"github.com/ordertune/ordertune/internal/market"
	"github.com/ordertune/ordertune/internal/metrics"
	"github.com/ordertune/ordertune/internal/passthrough"
	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/seal"
	"github.com/ordertune/ordertune/internal/trading"
)

func cmdServe(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet(a, "serve")
	migrate := fs.Bool("migrate", false, "apply pending migrations before serving")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(a.getenv, false)
	if err != nil {
		return err
	}
	log := logging.New(a.stderr, cfg.LogLevel, cfg.LogFormat)
	log.Info().EmbedObject(cfg).Msg("starting ordertune serve")
	if cfg.DatabaseURL == "" {
		return errors.New("DATABASE_URL is not set (ordertune demo runs a private PostgreSQL for trying things out)")
	}
	if err := checkSchema(cfg.DatabaseURL, *migrate, log); err != nil {
		return err
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	return serve(ctx, cfg, log, pool, nil)
}

// checkSchema refuses to serve a schema that is dirty or not the one this
// binary was built for: running against the wrong schema corrupts data
// quietly. With migrate, pending migrations are applied first.
func checkSchema(url string, migrate bool, log zerolog.Logger) error {
	if migrate {
		if err := postgres.Migrate(url); err != nil {
			return err
		}
	}
	st, err := postgres.State(url)
	if err != nil {
		return err
	}
	if !st.Current() {
		return fmt.Errorf("refusing to start: %s", st.Problem())
	}
	log.Info().Uint("schema_version", st.Version).Msg("schema current")
	return nil
}

// services are the running parts of one Ordertune process: the HTTP server
// and the background workers, built from the configuration in one place so
// serve, demo and the end-to-end tests run exactly the same wiring.
type services struct {
	http    *httpapi.Server
	auth    *auth.Service
	trading *trading.Service
	workers []func(ctx context.Context) // each runs until ctx ends
	closers []func()                    // run calls them when it returns
}

// build wires every feature. Add new services here.
func build(cfg config.Config, log zerolog.Logger, pool *pgxpool.Pool) (*services, error) {
	if cfg.MasterKeys == "" {
		return nil, errors.New("ORDERTUNE_MASTER_KEYS is not set: TOTP secrets and broker credentials are sealed with it " +
			"(`ordertune keys generate` makes one; `ordertune demo` keeps one under .data/)")
	}
	ring, err := seal.ParseRing(cfg.MasterKeys)
	if err != nil {
		return nil, fmt.Errorf("ORDERTUNE_MASTER_KEYS: %w", err)
	}
	var routes *passthrough.Allowlist
	if cfg.IBKRPassthroughRoutes != "" {
		if routes, err = passthrough.ParseRouteList(cfg.IBKRPassthroughRoutes); err != nil {
			return nil, fmt.Errorf("ORDERTUNE_IBKR_PASSTHROUGH_ROUTES: %w", err)
		}
	}
	clock, err := market.New(cfg.Market)
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	m.RegisterPool(pool)
	deps := httpapi.Deps{Log: log, Pool: pool, Metrics: m, PublicURL: cfg.PublicURL, IBKRRoutes: routes, Market: clock}
	s := &services{}
	if deps.Auth, err = newAuth(cfg, log, pool, ring); err != nil {
		return nil, err
	}
	s.workers = append(s.workers, authSweeper(deps.Auth))

	if deps.Broker, err = newBroker(cfg, pool, ring, m, clock); err != nil {
		return nil, err
	}
	cache := deps.Broker.Cache()
	s.workers = append(s.workers, func(ctx context.Context) { cache.Run(ctx, log) })

	// The account locks get a pool of their own: one connection per IBKR
	// account an order is being sent to, never competing with the queries
	// those orders make.
	lockCfg := pool.Config()
	lockCfg.MinConns, lockCfg.MaxConns = 0, 32
	locks, err := pgxpool.NewWithConfig(context.Background(), lockCfg)
	if err != nil {
		return nil, fmt.Errorf("account lock pool: %w", err)
	}
	s.closers = append(s.closers, locks.Close)
	if deps.Trading, err = trading.New(trading.Config{
		Pool: pool, LockPool: locks, Broker: deps.Broker.Orders(), Log: log, OnConfirm: m.Confirmation, Market: clock,
	}); err != nil {
		return nil, err
	}
	sealer := audit.NewSealer(audit.SealerConfig{Pool: pool, Log: log})
	s.workers = append(s.workers, deps.Trading.RunReconciler, sealer.Run)
	s.http, s.auth, s.trading = httpapi.New(deps), deps.Auth, deps.Trading
	return s, nil
}

// newBroker builds the broker service; its keep-alive runs as a worker.
func newBroker(cfg config.Config, pool *pgxpool.Pool, ring *seal.Ring, m *metrics.Metrics, clock *market.Clock) (*broker.Service, error) {
	b, err := broker.New(broker.Config{
		Pool: pool, Ring: ring,
		IBKR:             ibkr.Options{BaseURL: cfg.IBKRBaseURL, HTTPClient: &http.Client{Transport: m.Transport(ibkr.NewTransport())}},
		Cache:            broker.CacheConfig{OnHandshake: m.Handshake, Maintenance: clock.RestartingUntil},
		AllowedQuestions: broker.DefaultAllowedQuestions(),
	})
	if err != nil {
		return nil, err
	}
	m.RegisterSessions(b.Cache().StateCounts)
	return b, nil
}

// serve runs the HTTP server on cfg.Addr and the workers until ctx ends.
// ready, when not nil, is called with the listening address once
// connections are accepted.
func serve(ctx context.Context, cfg config.Config, log zerolog.Logger, pool *pgxpool.Pool, ready func(addr string)) error {
	svc, err := build(cfg, log, pool)
	if err != nil {
		return err
	}
	return svc.run(ctx, cfg, log, ready)
}

// run serves HTTP on cfg.Addr and runs the workers until ctx ends.
func (svc *services) run(ctx context.Context, cfg config.Config, log zerolog.Logger, ready func(addr string)) error {
	defer func() { // last: after the workers and requests have stopped
		for _, c := range svc.closers {
			c()
		}
	}()
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	var wg sync.WaitGroup
	wctx, stopWorkers := context.WithCancel(ctx)
	for _, w := range svc.workers {
		wg.Add(1)
		go func() { defer wg.Done(); w(wctx) }()
	}
	defer func() { stopWorkers(); wg.Wait() }()
	log.Info().Str("addr", l.Addr().String()).Str("url", cfg.PublicURL).Msg("listening")
	if ready != nil {
		ready(l.Addr().String())
	}
	return svc.http.Serve(ctx, l, cfg.ShutdownPeriod)
}
