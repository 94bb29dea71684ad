// Package trading is what subscribers pay for: signals, the position size,
// the preview, Confirm Buy/Sell with exactly-once orders at IBKR, the
// confirmation log and the reconciliation worker that settles it.
//
// It reaches IBKR only through the Broker interface it declares in its own
// words (place, cancel, order status, live orders, resolve contract), which
// package broker implements; it imports neither ibkr nor broker. Orders to
// one IBKR account go one at a time, across replicas: the account lock
// (a PostgreSQL advisory lock behind an in-process mutex) is held while an
// order is sent. Log lines go through the context's logger, so they carry
// the request's id and user (or the worker's name) and the confirmation.
//
// The exactly-once argument rests on three facts. The database, not this
// code, allows one live confirmation per (user, signal, side) and one per
// Idempotency-Key (unique indexes). A confirmation is committed as
// "pending" before any call to IBKR, and its id is the order's cOID, which
// IBKR refuses to register twice. And an order whose answer was lost is
// never sent again: it becomes "unknown" and the reconciliation worker finds
// it by its cOID.
//
// The converse matters as much: a confirmation becomes "failed" only on
// positive evidence that its order was not placed — IBKR's refusal, or this
// process knowing that nothing was sent. Not finding an order at IBKR is no
// such evidence (its orders list forgets orders at the nightly reset and on
// a re-login; a restart forgets order ids), so reconciliation keeps looking,
// in the executions too, and after a bound tells the user that the outcome
// is unknown. A user told "not placed" would confirm again and double the
// position.
package trading

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"

	"github.com/ordertune/ordertune/internal/ids"
	"github.com/ordertune/ordertune/internal/logging"
	"github.com/ordertune/ordertune/internal/market"
	"github.com/ordertune/ordertune/internal/risk"
)

// Config configures a Service. Zero fields take defaults.
type Config struct {
	Pool *pgxpool.Pool
	// LockPool holds the account locks: one connection per IBKR account an
	// order is being sent to. A pool of its own keeps an order that holds a
	// lock from waiting for a connection that other lock holders have
	// taken; nil means Pool (enough for tests).
	LockPool *pgxpool.Pool
	Broker   Broker
	// Risk answers whether an order may go; nil means the platform's
	// default ceilings over Pool.
	Risk *risk.Service
	Log  zerolog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NewID returns a fresh UUID (a confirmation's id and cOID); nil means
	// random version 4 UUIDs.
	NewID func() string
	// OrderTimeout bounds one order placement including its reply chain.
	OrderTimeout time.Duration
	// PendingGrace is how old a "pending" row must be before reconciliation
	// treats it as abandoned (its request died with a crash); default
	// OrderTimeout + 15 s, a little longer than a confirm request takes.
	// This process never takes its own confirmations in flight, and a row
	// taken too early by another instance only shows "unknown" until its
	// request records the outcome, so shortening it is safe.
	PendingGrace time.Duration
	// ReconcileInterval is the pause between reconciliation passes.
	ReconcileInterval time.Duration
	// ReconcileBatch bounds how many rows one pass claims.
	ReconcileBatch int
	// ReconcileLease is how long a claimed row is left alone by other
	// passes and instances while it is being looked up at IBKR.
	ReconcileLease time.Duration
	// Replica, when set, is this process's id among replicas sharing the
	// database (package lease): reconciliation claims no row of a user
	// whose IBKR session another live replica owns — that owner looks it
	// up, so no replica hand-shakes for another's tenant. Empty means one
	// replica.
	Replica string
	// OnConfirm, when set, is told each confirm's outcome: "submitted",
	// "failed", "unknown", "refused" (nothing recorded, a 4xx) or
	// "duplicate" (the first result of a repeat), e.g. for metrics.
	OnConfirm func(outcome string)
	// OutcomeEvent, when set, returns the notification of a confirmation's
	// new status (submitted, filled, cancelled, failed, …): CTEs that the
	// statement recording the status runs too, so the notification commits,
	// or rolls back, with it. They select from the relation named from,
	// which holds the changed row or none, and number their parameters
	// from first. c is the confirmation as the change leaves it. A status
	// with no notification returns an EventSQL without CTEs.
	OutcomeEvent func(c Confirmation, from string, first int) (EventSQL, error)
	// ReconcileBackoffMax bounds the back-off of a row whose order
	// reconciliation cannot find (or ask about): its lookups start
	// ReconcileInterval apart and double up to this (default 2 min).
	ReconcileBackoffMax time.Duration
	// OutcomeUnknownAfter is how long an order that was sent may go
	// unfound at IBKR before its confirmation says OutcomeUnknownMessage
	// to the user and the admins (default 10 min). It is never marked
	// failed: absence is no evidence that the order was not placed.
	OutcomeUnknownAfter time.Duration
	// Market is the exchange's clock: auction cut-offs and IBKR's restart
	// windows. Nil means the default cut-offs and no restart windows, on
	// Now.
	Market *market.Clock
}

func (c Config) withDefaults() Config {
	if c.LockPool == nil {
		c.LockPool = c.Pool
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewID == nil {
		c.NewID = ids.New
	}
	if c.Market == nil {
		// Only invalid cut-offs fail, and the defaults are valid.
		c.Market, _ = market.New(market.Config{Now: c.Now, Maintenance: []market.Window{}})
	}
	if c.OrderTimeout <= 0 {
		c.OrderTimeout = 30 * time.Second
	}
	if c.PendingGrace <= 0 {
		c.PendingGrace = c.OrderTimeout + 15*time.Second
	}
	if c.ReconcileInterval <= 0 {
		c.ReconcileInterval = 5 * time.Second
	}
	if c.ReconcileBatch <= 0 {
		c.ReconcileBatch = 100
	}
	if c.ReconcileLease <= 0 {
		c.ReconcileLease = time.Minute
	}
	if c.OnConfirm == nil {
		c.OnConfirm = func(string) {}
	}
	if c.ReconcileBackoffMax <= 0 {
		c.ReconcileBackoffMax = 2 * time.Minute
	}
	c.ReconcileBackoffMax = max(c.ReconcileBackoffMax, c.ReconcileInterval)
	if c.OutcomeUnknownAfter <= 0 {
		c.OutcomeUnknownAfter = 10 * time.Minute
	}
	return c
}

// Service is the trading feature. It is safe for concurrent use.
type Service struct {
	cfg    Config
	pool   *pgxpool.Pool
	broker Broker
	risk   *risk.Service
	log    zerolog.Logger

	// accounts serializes orders per IBKR account, across replicas.
	accounts accountLocks
	// inflight holds the confirmations this process is placing right now,
	// so its own reconciliation never mistakes them for abandoned ones.
	inflightMu sync.Mutex
	inflight   map[string]bool
	// kept holds outcomes known here but not yet written, above all the
	// evidence that an order was never sent.
	kept unrecorded
	// conids remembers the conid cache's rows in memory (ticker → int64):
	// conids never change, so no order needs a query for one twice.
	conids sync.Map
	// conidLookups makes one lookup of a ticker missing from conids at a
	// time (see conid).
	conidLookups singleflight.Group
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Pool == nil || cfg.Broker == nil {
		return nil, fmt.Errorf("trading: a pool and a broker are required")
	}
	cfg = cfg.withDefaults()
	if cfg.Risk == nil {
		r, err := risk.New(risk.Config{Pool: cfg.Pool, Now: cfg.Now})
		if err != nil {
			return nil, fmt.Errorf("trading: %w", err)
		}
		cfg.Risk = r
	}
	return &Service{
		cfg:      cfg,
		pool:     cfg.Pool,
		broker:   cfg.Broker,
		risk:     cfg.Risk,
		log:      cfg.Log,
		accounts: accountLocks{pool: cfg.LockPool},
		inflight: map[string]bool{},
	}, nil
}

// logger returns ctx's logger (a request's, with its id and user, or a
// worker's), or the service's outside both.
func (s *Service) logger(ctx context.Context) *zerolog.Logger {
	l := logging.FromContext(ctx, s.log)
	return &l
}

// tx runs fn in a transaction owned by the exported method calling it.
func (s *Service) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

func (s *Service) markInflight(id string, on bool) {
	s.inflightMu.Lock()
	defer s.inflightMu.Unlock()
	if on {
		s.inflight[id] = true
	} else {
		delete(s.inflight, id)
	}
}

func (s *Service) isInflight(id string) bool {
	s.inflightMu.Lock()
	defer s.inflightMu.Unlock()
	return s.inflight[id]
}
