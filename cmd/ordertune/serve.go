package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/canary"
	"github.com/ordertune/ordertune/internal/config"
	"github.com/ordertune/ordertune/internal/httpapi"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/lease"
	"github.com/ordertune/ordertune/internal/ledger"
	"github.com/ordertune/ordertune/internal/logging"
	"github.com/ordertune/ordertune/internal/market"
	"github.com/ordertune/ordertune/internal/metrics"
	"github.com/ordertune/ordertune/internal/notify"
	"github.com/ordertune/ordertune/internal/passthrough"
	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/risk"
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
	if err := checkSchema(cfg, *migrate, log); err != nil {
		return err
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	warnErasableAudit(ctx, pool, log)
	return serve(ctx, cfg, log, pool, nil)
}

// checkSchema refuses to serve a schema that is dirty or not the one this
// binary was built for: running against the wrong schema corrupts data
// quietly. With migrate, pending migrations are applied first, as the
// owner (cfg.MigrateURL).
func checkSchema(cfg config.Config, migrate bool, log zerolog.Logger) error {
	url := cfg.DatabaseURL
	if migrate {
		url = cfg.MigrateURL()
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
	if st.Version > st.Latest {
		// A rolling upgrade: the new release migrated, this replica is of
		// the previous one, and the migrations keep it working.
		log.Info().Uint("schema_version", st.Version).Uint("binary_version", st.Latest).Uint("oldest_binary", st.Oldest).
			Msg("schema newer than this binary, and it serves this binary")
		return nil
	}
	log.Info().Uint("schema_version", st.Version).Msg("schema current")
	return nil
}

// warnErasableAudit warns when the server's database role could erase the
// audit trail: it should be a member of ordertune_app, not the owner.
func warnErasableAudit(ctx context.Context, pool *pgxpool.Pool, log zerolog.Logger) {
	erasable, err := postgres.CanEraseAudit(ctx, pool)
	if err != nil {
		log.Warn().Err(err).Msg("could not check the database role's privileges")
		return
	}
	if erasable {
		log.Warn().Msg("DATABASE_URL connects as a role that can change or delete audit rows (the owner or a superuser): " +
			"connect as a member of " + postgres.AppRole + " and migrate with ORDERTUNE_MIGRATE_DATABASE_URL (deploy/README.md)")
	}
}

// services are the running parts of one Ordertune process: the HTTP server
// and the background workers, built from the configuration in one place so
// serve, demo and the end-to-end tests run exactly the same wiring.
type services struct {
	broker  *broker.Service
	http    *httpapi.Server
	auth    *auth.Service
	trading *trading.Service
	notify  *notify.Service
	workers []func(ctx context.Context) // each runs until ctx ends
	closers []func()                    // run calls them when it returns
	// leases are this replica's tenant session leases: taken no more once
	// shutting down, and released once the requests in flight finished.
	leases    *lease.Manager
	onRelease func(n int) // metrics: leases given up on shutdown
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
	if err := checkKeyRing(pool, ring); err != nil {
		return nil, err
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
	m.RegisterPool("main", pool)
	deps := httpapi.Deps{Log: log, Pool: pool, Metrics: m, PublicURL: cfg.PublicURL, IBKRRoutes: routes, Market: clock}
	s := &services{}
	// The ledger's jobs run on the notification queue (one river leader per
	// database schedules them); the ledger itself needs trading, built
	// below, and is bound to its jobs then.
	lj := &ledger.Jobs{}
	if deps.Notify, err = notify.New(notify.Config{
		Pool: pool, Ring: ring, Log: log, SMTPURL: cfg.SMTPURL, MailFrom: cfg.MailFrom, MailTLS: cfg.MailTLS,
		PublicURL: cfg.PublicURL, AllowPrivate: cfg.WebhookAllowPrivate, RescueAfter: cfg.NotifyRescueAfter,
		AddWorkers: lj.Register, PeriodicJobs: ledger.PeriodicJobs(clock, 0, 0),
		JobContext: trading.WithoutTakeBack,
	}); err != nil {
		return nil, err
	}
	s.workers = append(s.workers, deps.Notify.Run)
	m.RegisterOutbox(func() (int, time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return deps.Notify.Backlog(ctx)
	})
	if deps.Auth, err = newAuth(cfg, log, pool, ring, deps.Notify); err != nil {
		return nil, err
	}
	s.workers = append(s.workers, authSweeper(deps.Auth))

	// The cache is built below; the leases tell it of a lost lease only
	// once their worker runs.
	var cache *broker.Cache
	// The leases get a small pool of their own: a renewal queued behind a
	// burst of confirms would let the leases expire under a live replica.
	leaseCfg := pool.Config()
	leaseCfg.MinConns, leaseCfg.MaxConns = 1, 4
	leaseCfg.ConnConfig.StatementCacheCapacity = 64 // a handful of statements
	leasePool, err := pgxpool.NewWithConfig(context.Background(), leaseCfg)
	if err != nil {
		return nil, fmt.Errorf("lease pool: %w", err)
	}
	s.closers = append(s.closers, leasePool.Close)
	m.RegisterPool("leases", leasePool)
	// And the renewal one connection of its own: acquisitions and owner
	// look-ups of a burst of forwarded requests must not delay it either.
	leaseCfg = pool.Config()
	leaseCfg.MinConns, leaseCfg.MaxConns = 1, 1
	leaseCfg.ConnConfig.StatementCacheCapacity = 64
	renewPool, err := pgxpool.NewWithConfig(context.Background(), leaseCfg)
	if err != nil {
		return nil, fmt.Errorf("lease renewal pool: %w", err)
	}
	s.closers = append(s.closers, renewPool.Close)
	m.RegisterPool("lease_renewal", renewPool)
	leases, repl, rm, err := newReplication(cfg, log, leasePool, renewPool, ring, m, func(k lease.Key) { cache.LeaseLost(k) })
	if err != nil {
		return nil, err
	}
	s.leases, s.onRelease, deps.Replication = leases, rm.Released, repl
	s.workers = append(s.workers, leases.Run)
	if deps.Broker, err = newBroker(cfg, log, pool, ring, m, clock, deps.Notify, leases, importOnReconnect(lj)); err != nil {
		return nil, err
	}
	if err := deps.Notify.AddPeriodic("broker.activation_check", broker.ActivationInterval, activationCheck(deps.Broker, log)); err != nil {
		return nil, err
	}
	cache = deps.Broker.Cache()
	s.workers = append(s.workers, func(ctx context.Context) { cache.Run(ctx, log) })

	if deps.Risk, err = risk.New(risk.Config{Pool: pool, Ceilings: risk.Limits{MaxOrderValue: &cfg.MaxOrderValue,
		MaxSharesPerOrder: &cfg.MaxSharesPerOrder, MaxOrdersPerDay: &cfg.MaxOrdersPerDay, MaxDailyValue: &cfg.MaxDailyValue}}); err != nil {
		return nil, fmt.Errorf("risk ceilings (ORDERTUNE_MAX_...): %w", err)
	}
	// The account locks get a pool of their own: one connection per IBKR
	// account an order is being sent to, never competing with the queries
	// those orders make. All are made at start and kept, each readied
	// for the order's statements as it is made: a market-open storm then
	// starts on warm connections rather than making and readying one per
	// order in its first seconds, when a new backend's first orders cost
	// it several times their steady CPU (scripts/BENCHMARKS.md).
	outcomes := forgetPositionsOnFill(orderOutcomes(deps.Notify), func() *ledger.Service { return deps.Ledger })
	lockCfg := pool.Config()
	lockCfg.MinConns, lockCfg.MaxConns = int32(cfg.OrderLockConns), int32(cfg.OrderLockConns)
	lockCfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if err := trading.WarmLockConn(ctx, conn, outcomes); err != nil {
			// A cold connection is only slower at its first order.
			log.Warn().Err(err).Msg("could not ready an account-lock connection")
		}
		return nil
	}
	// It runs a handful of statements (the lock, the write-ahead row, the
	// outcome, the unlock); pgx's default cache of 512 is sized up front
	// on each of its connections.
	lockCfg.ConnConfig.StatementCacheCapacity = 64
	locks, err := pgxpool.NewWithConfig(context.Background(), lockCfg)
	if err != nil {
		return nil, fmt.Errorf("account lock pool: %w", err)
	}
	s.closers = append(s.closers, locks.Close)
	m.RegisterPool("account_locks", locks)
	if deps.Trading, err = trading.New(trading.Config{
		Pool: pool, LockPool: locks, Broker: deps.Broker.Orders(), Risk: deps.Risk, Log: log, OnConfirm: m.Confirmation, Market: clock,
		PendingGrace: cfg.PendingGrace, OutcomeUnknownAfter: cfg.OutcomeUnknownAfter,
		OutcomeEvent: outcomes, Replica: leases.Replica(),
	}); err != nil {
		return nil, err
	}
	if deps.Ledger, err = ledger.New(ledger.Config{Pool: pool, Broker: deps.Broker.Orders(), RecordFills: deps.Trading.RecordFills,
		Market: clock, Log: log, Queue: deps.Notify.Queue(), Serves: servesSession(cache)}); err != nil {
		return nil, err
	}
	lj.Bind(deps.Ledger)
	s.workers = append(s.workers, deps.Ledger.RunReconnects)
	sealer, err := newSealer(cfg, log, pool)
	if err != nil {
		return nil, err
	}
	s.workers = append(s.workers, deps.Trading.RunReconciler, sealer.Run)
	s.http, s.auth, s.trading, s.notify = httpapi.New(deps), deps.Auth, deps.Trading, deps.Notify
	s.broker = deps.Broker
	return s, nil
}

// checkKeyRing refuses to build the services when the key ring does not
// open this database's key ring canary (sealing it on the first start):
// with the wrong keys every secret would fail later, one request at a
// time. It runs once before serving, bounded by its own timeout.
func checkKeyRing(pool *pgxpool.Pool, ring *seal.Ring) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return canary.Check(ctx, pool, ring, time.Now())
}

// newSealer builds the audit sealer, which also signs checkpoints of the
// chain head when ORDERTUNE_AUDIT_SIGNING_KEY is set.
func newSealer(cfg config.Config, log zerolog.Logger, pool *pgxpool.Pool) (*audit.Sealer, error) {
	sc := audit.SealerConfig{Pool: pool, Log: log, CheckpointFile: cfg.AuditCheckpoints,
		CheckpointEvery: cfg.AuditCheckpointEvery, CheckpointInterval: cfg.AuditCheckpointInterval}
	if cfg.AuditSigningKey == "" {
		log.Warn().Msg("audit checkpoints are off: without ORDERTUNE_AUDIT_SIGNING_KEY, a database owner who rewinds " +
			"the audit chain goes unnoticed (`ordertune keys audit-generate` makes a key)")
		return audit.NewSealer(sc), nil
	}
	signer, err := audit.ParseSigningKey(cfg.AuditSigningKey)
	if err != nil {
		return nil, fmt.Errorf("ORDERTUNE_AUDIT_SIGNING_KEY: %w", err)
	}
	sc.Signer = signer
	log.Info().Str("key", audit.KeyID(signer.PublicKey())).Str("file", cfg.AuditCheckpoints).Msg("audit checkpoints on")
	return audit.NewSealer(sc), nil
}

// orderOutcomes reports a confirmation's new status as its order.* event,
// in the transaction that records it.
func orderOutcomes(ns *notify.Service) outcomeEvent {
	return func(c trading.Confirmation, from string, first int) (trading.EventSQL, error) {
		t := "order." + string(c.Status) // order.submitted, order.filled, …
		if !notify.KnownType(t) || c.UserID == "" {
			return trading.EventSQL{}, nil
		}
		in, err := ns.InsertSQL(notify.Event{UserID: c.UserID, Type: t, Data: c}, from, first)
		if err != nil {
			return trading.EventSQL{}, err
		}
		return trading.EventSQL{CTEs: in.CTEs, Args: in.Args, Correct: func(ctx context.Context, c trading.Confirmation) (bool, error) {
			return ns.Correct(ctx, in, c)
		}}, nil
	}
}

// forgetPositionsOnFill drops the user's cached positions when an order
// fills, then builds the fill's notification with next: the dashboard
// reads the positions again as soon as it sees Filled, and a list cached
// before the fill would show the position missing (or an exit's shares
// still held) for the cache's lifetime. The drop comes just before the
// statement that records the fill; IBKR already holds the fill, so a read
// before that statement commits is no older than one after it. The ledger
// is built after trading, hence the function.
func forgetPositionsOnFill(next outcomeEvent, l func() *ledger.Service) outcomeEvent {
	return func(c trading.Confirmation, from string, first int) (trading.EventSQL, error) {
		if c.Status == trading.StatusFilled || c.Status == trading.StatusPartiallyFilled {
			if s := l(); s != nil && c.UserID != "" {
				s.ForgetPositions(c.UserID)
			}
		}
		return next(c, from, first)
	}
}

// outcomeEvent is trading.Config.OutcomeEvent.
type outcomeEvent = func(c trading.Confirmation, from string, first int) (trading.EventSQL, error)

// competingSessions queues the broker.competing_session notification in
// the transaction that records the competing login or its take-over.
func competingSessions(ns *notify.Service) func(ctx context.Context, tx pgx.Tx, userID string, ev broker.CompetingSession) error {
	if ns == nil {
		return nil
	}
	return func(ctx context.Context, tx pgx.Tx, userID string, ev broker.CompetingSession) error {
		_, err := ns.Enqueue(ctx, tx, notify.Event{UserID: userID, Type: notify.BrokerCompetingSession, Data: ev})
		return err
	}
}

// activationCheck is the periodic task that re-tests credentials IBKR
// has not activated yet (broker.activated).
func activationCheck(b *broker.Service, log zerolog.Logger) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		n, err := b.CheckPendingActivations(ctx)
		if n > 0 {
			log.Info().Int("activated", n).Msg("IBKR credentials activated")
		}
		return err
	}
}

// importOnReconnect imports a tenant's executions whenever its IBKR
// session is re-established (a fill polling missed while it was away is
// recovered at once); a scheduled renewal of the token lost nothing.
func importOnReconnect(lj *ledger.Jobs) func(broker.SessionRestored) {
	return func(r broker.SessionRestored) {
		if r.Reason != broker.RestoredRenewal {
			lj.Reconnected(r.Conn.UserID, trading.Mode(r.Conn.Mode), r.Reason)
		}
	}
}

// servesSession reports whether this replica holds the user's IBKR
// session ready now (memory only).
func servesSession(cache *broker.Cache) func(userID string) bool {
	return func(userID string) bool {
		st, ok := cache.State(userID)
		return ok && st.State == broker.StateReady
	}
}

// newBroker builds the broker service; its keep-alive runs as a worker.
// Credentials that IBKR activates are announced through ns; onRestored is
// told each time a tenant's session is (re)established.
func newBroker(cfg config.Config, log zerolog.Logger, pool *pgxpool.Pool, ring *seal.Ring, m *metrics.Metrics, clock *market.Clock, ns *notify.Service,
	leases *lease.Manager, onRestored func(broker.SessionRestored)) (*broker.Service, error) {
	b, err := broker.New(broker.Config{
		Pool: pool, Ring: ring,
		OnActivated: func(ctx context.Context, tx pgx.Tx, userID string, mode broker.Mode) error {
			_, err := ns.Enqueue(ctx, tx, notify.Event{UserID: userID, Type: notify.BrokerActivated, Data: map[string]any{
				"mode": string(mode), "message": "IBKR has activated your " + string(mode) + " credentials: orders can go out now.",
			}})
			return err
		},
		IBKR: ibkr.Options{BaseURL: cfg.IBKRBaseURL, HTTPClient: &http.Client{Transport: m.Transport(ibkr.NewTransport())}},
		Cache: broker.CacheConfig{OnHandshake: m.Handshake, Maintenance: clock.RestartingUntil, FailureBackoff: cfg.HandshakeFailureBackoff,
			Leases: leases, OnSessionRestored: onRestored},
		AllowedQuestions: broker.DefaultAllowedQuestions(),
		OnCompeting:      competingSessions(ns),
		Log:              log,
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
	if cfg.PprofAddr != "" {
		if err := servePprof(ctx, cfg.PprofAddr, log); err != nil {
			l.Close()
			return fmt.Errorf("profiler on %s: %w", cfg.PprofAddr, err)
		}
	}
	var wg sync.WaitGroup
	wctx, stopWorkers := context.WithCancel(ctx)
	for _, w := range svc.workers {
		wg.Add(1)
		go func() { defer wg.Done(); w(wctx) }()
	}
	defer func() { stopWorkers(); wg.Wait() }()
	if cfg.InternalURL == "" && svc.leases != nil {
		u := boundURL(l.Addr(), net.InterfaceAddrs) // the port bound, when ADDR's was 0
		svc.leases.SetURL(u)
		log.Info().Str("internal_url", u).Msg("other replicas forward to this one at the address bound (ORDERTUNE_INTERNAL_URL is unset)")
	}
	log.Info().Str("addr", l.Addr().String()).Str("url", cfg.PublicURL).Msg("listening")
	if ready != nil {
		ready(l.Addr().String())
	}
	stopLeasing := context.AfterFunc(ctx, func() {
		if svc.leases != nil {
			svc.leases.Drain() // SIGTERM: no new tenants here
		}
	})
	defer stopLeasing()
	err = svc.http.Serve(ctx, l, cfg.ShutdownPeriod)
	svc.releaseLeases(log)
	return err
}

// releaseLeases hands this replica's tenants over at once when it stops,
// after the requests in flight finished: the other replicas take them on
// their next request instead of waiting for the leases to expire.
func (svc *services) releaseLeases(log zerolog.Logger) {
	if svc.leases == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := svc.leases.ReleaseAll(ctx)
	if err != nil {
		log.Warn().Err(err).Msg("could not release the session leases; other replicas take the tenants when they expire")
		return
	}
	if svc.onRelease != nil {
		svc.onRelease(n)
	}
	log.Info().Int("leases", n).Msg("session leases released")
}
