// Package ledger is what a trader's orders actually did: IBKR's
// executions, stored once each and kept forever (IBKR lists only the last
// 7 days), matched to the confirmations whose orders they filled; the
// account's current positions, read from IBKR (the truth for what is held)
// and cached briefly; and realized P&L per round trip, first in, first
// out, commissions included.
//
// The ledger reaches IBKR only through trading.Broker (executions,
// positions), never inside a transaction, and hands a fill that order
// polling missed to the trading feature, which owns confirmations'
// statuses. Imports run as river jobs (jobs.go): after each auction, on a
// schedule, and on demand.
package ledger

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/logging"
	"github.com/ordertune/ordertune/internal/market"
	"github.com/ordertune/ordertune/internal/trading"
)

// FillRecorder brings confirmations up to their executions; the trading
// feature's Service.RecordFills is one.
type FillRecorder func(ctx context.Context, userID string, fills []trading.Fills) (int, error)

// Config configures a Service.
type Config struct {
	Pool   *pgxpool.Pool
	Broker trading.Broker
	// RecordFills recovers fills that order polling missed; nil records
	// none (the executions are still stored).
	RecordFills FillRecorder
	// Market is the exchange's clock: days of P&L are exchange days, and
	// imports follow its auctions. Nil means market.Default().
	Market *market.Clock
	Log    zerolog.Logger
	// Now is the clock; nil means Market's.
	Now func() time.Time
	// PositionsTTL is how long a user's positions are served from the
	// cache (default 15 s): IBKR paces the portfolio account list to one
	// call per 5 s.
	PositionsTTL time.Duration
	// ImportEvery is how often every tenant with recent orders is imported
	// besides the runs after each auction (default 30 minutes).
	ImportEvery time.Duration
	// AfterAuction is how long after an auction (the open, the close) the
	// tenants are imported (default 3 minutes: IBKR reports auction fills
	// within a minute or two).
	AfterAuction time.Duration
	// RecentOrders is how far back a tenant's last confirmation may be for
	// the scheduled imports to include it (default 8 days: IBKR's
	// executions reach 7 days back).
	RecentOrders time.Duration
	// Queue is the river client the imports after reconnects are queued
	// on (Reconnected); nil queues none.
	Queue *river.Client[pgx.Tx]
	// ReconnectDelay is how long after a reconnect its import runs
	// (default 10 s): a burst of reconnects makes one import, and IBKR
	// lists what it filled while the session was away.
	ReconnectDelay time.Duration
	// Serves, when set, reports whether this process holds the user's
	// IBKR session now (with replicas, the tenant's session lease). An
	// import after a reconnect runs where it does: river hands the job to
	// any replica, and a background import must never take a tenant's
	// session from its owner. Nil means one process serving everyone.
	Serves func(userID string) bool
}

// The schedule's defaults (Config).
const (
	defaultImportEvery  = 30 * time.Minute
	defaultAfterAuction = 3 * time.Minute
)

// Service is the ledger.
type Service struct {
	cfg  Config
	pool *pgxpool.Pool

	mu        sync.Mutex
	positions map[string]cachedPositions // by user id

	reconnects        chan reconnect // Reconnected → RunReconnects
	droppedReconnects atomic.Int64   // reconnects the full backlog refused
}

type cachedPositions struct {
	mode trading.Mode
	at   time.Time
	list []trading.Position
}

// New returns the ledger.
func New(cfg Config) (*Service, error) {
	if cfg.Pool == nil || cfg.Broker == nil {
		return nil, fmt.Errorf("ledger: a pool and a broker are required")
	}
	if cfg.Market == nil {
		cfg.Market = market.Default()
	}
	if cfg.Now == nil {
		cfg.Now = cfg.Market.Now
	}
	if cfg.PositionsTTL <= 0 {
		cfg.PositionsTTL = 15 * time.Second
	}
	if cfg.ImportEvery <= 0 {
		cfg.ImportEvery = defaultImportEvery
	}
	if cfg.AfterAuction <= 0 {
		cfg.AfterAuction = defaultAfterAuction
	}
	if cfg.RecentOrders <= 0 {
		cfg.RecentOrders = 8 * 24 * time.Hour
	}
	if cfg.ReconnectDelay <= 0 {
		cfg.ReconnectDelay = defaultReconnectDelay
	}
	return &Service{cfg: cfg, pool: cfg.Pool, positions: map[string]cachedPositions{},
		reconnects: make(chan reconnect, reconnectBacklog)}, nil
}

// logger returns ctx's logger (a request's or a job's), or the service's.
func (s *Service) logger(ctx context.Context) *zerolog.Logger {
	l := logging.FromContext(ctx, s.cfg.Log)
	return &l
}
