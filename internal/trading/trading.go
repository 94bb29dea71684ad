// Package trading is what subscribers pay for: signals, the position size,
// the preview, Confirm Buy/Sell with exactly-once orders at IBKR, the
// confirmation log and the reconciliation worker that settles it.
//
// The exactly-once argument rests on three facts. The database, not this
// code, allows one live confirmation per (user, signal, side) and one per
// Idempotency-Key (unique indexes). A confirmation is committed as
// "pending" before any call to IBKR, and its id is the order's cOID, which
// IBKR refuses to register twice. And an order whose answer was lost is
// never sent again: it becomes "unknown" and the reconciliation worker finds
// it by its cOID.
package trading

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
)

// DefaultAllowedQuestions are the reply-question message ids that are
// suppressed at brokerage-session start and confirmed when IBKR still asks
// them: price constraint, no market data, tick and size limits, immediate
// fill, value limit, market order risk and cap price.
func DefaultAllowedQuestions() []string {
	return []string{"o163", "o354", "o382", "o383", "o403", "o451", "o10151", "o10153"}
}

// Account is the IBKR account a user's active broker connection trades.
type Account struct {
	// Mode is "live" or "paper".
	Mode string
	// ID is the account id; it is shown to users only masked.
	ID string
	// Masked is the account id as users see it, e.g. "U•••4567".
	Masked string
}

// Conn is a ready brokerage session: live session token made, brokerage
// session open, accounts queried and the allowlisted questions suppressed.
type Conn struct {
	Session *ibkr.Session
	Account Account
}

// Broker hands out users' IBKR sessions. The broker package's per-tenant
// session cache implements it in production.
type Broker interface {
	// ActiveAccount returns the account of the user's active connection
	// without calling IBKR; errs.BrokerNotConnected when there is none.
	ActiveAccount(ctx context.Context, userID string) (Account, error)
	// Session returns a ready session for the user's active connection,
	// making one (once per tenant at a time) when none is cached.
	Session(ctx context.Context, userID string) (Conn, error)
	// Invalidate tells the cache that IBKR refused sess with kind (an
	// expired token, no brokerage session), so that the next Session call
	// makes a new live session token or re-initialises.
	Invalidate(userID string, sess *ibkr.Session, kind ibkr.Kind)
}

// Config configures a Service. Zero fields take defaults.
type Config struct {
	Pool   *pgxpool.Pool
	Broker Broker
	Log    zerolog.Logger
	// AllowedQuestions are the reply-question message ids confirmed when
	// IBKR asks them; any other question is declined and the confirmation
	// fails with IBKR's text. Nil means DefaultAllowedQuestions.
	AllowedQuestions []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NewID returns a fresh UUID (a confirmation's id and cOID); nil means
	// random version 4 UUIDs.
	NewID func() string
	// OrderTimeout bounds one order placement including its reply chain.
	OrderTimeout time.Duration
	// PendingGrace is how old a "pending" row must be before reconciliation
	// treats it as abandoned (its request died with a crash). It must be
	// longer than any confirm request takes.
	PendingGrace time.Duration
	// ReconcileInterval is the pause between reconciliation passes.
	ReconcileInterval time.Duration
	// ReconcileBatch bounds how many rows one pass claims.
	ReconcileBatch int
	// ReconcileLease is how long a claimed row is left alone by other
	// passes and instances while it is being looked up at IBKR.
	ReconcileLease time.Duration
	// OnConfirm, when set, is told each confirm's outcome: "submitted",
	// "failed", "unknown", "refused" (nothing recorded, a 4xx) or
	// "duplicate" (the first result of a repeat), e.g. for metrics.
	OnConfirm func(outcome string)
	// OnOutcome, when set, is called in the transaction that records a
	// confirmation's new status (submitted, filled, cancelled, failed, …),
	// so a notification of it commits, or rolls back, with it.
	OnOutcome func(ctx context.Context, tx pgx.Tx, c Confirmation) error
	// AccountAdvisoryLock also serializes orders per IBKR account across
	// server instances, with a PostgreSQL advisory lock held (outside any
	// transaction) while the order is sent. One instance needs only its
	// in-process lock.
	AccountAdvisoryLock bool
	// MissesBeforeFailed is how many reconciliation passes must fail to find
	// an order at IBKR before it is declared never placed. IBKR's first
	// orders call of a session may be empty, so it is at least 2.
	MissesBeforeFailed int
}

func (c Config) withDefaults() Config {
	if c.AllowedQuestions == nil {
		c.AllowedQuestions = DefaultAllowedQuestions()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewID == nil {
		c.NewID = newUUID
	}
	if c.OrderTimeout <= 0 {
		c.OrderTimeout = 30 * time.Second
	}
	if c.PendingGrace <= 0 {
		c.PendingGrace = 2 * time.Minute
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
	if c.MissesBeforeFailed < 2 {
		c.MissesBeforeFailed = 2
	}
	return c
}

// Service is the trading feature. It is safe for concurrent use.
type Service struct {
	cfg    Config
	pool   *pgxpool.Pool
	broker Broker
	log    zerolog.Logger
	policy ibkr.ReplyPolicy

	// accounts serializes orders per IBKR account: IBKR wants no other
	// order for an account while a reply chain is open.
	accounts keyedMutex
	// inflight holds the confirmations this process is placing right now,
	// so its own reconciliation never mistakes them for abandoned ones.
	inflightMu sync.Mutex
	inflight   map[string]bool
	// conids remembers the conid cache's rows in memory (ticker → int64):
	// conids never change, so no order needs a query for one twice.
	conids sync.Map
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Pool == nil || cfg.Broker == nil {
		return nil, fmt.Errorf("trading: a pool and a broker are required")
	}
	cfg = cfg.withDefaults()
	return &Service{
		cfg:      cfg,
		pool:     cfg.Pool,
		broker:   cfg.Broker,
		log:      cfg.Log,
		policy:   ibkr.ConfirmMessageIDs(cfg.AllowedQuestions...),
		inflight: map[string]bool{},
	}, nil
}

// AllowedQuestions returns the reply-question message ids the service
// confirms; the session cache suppresses the same ids at session start.
func (s *Service) AllowedQuestions() []string {
	return append([]string(nil), s.cfg.AllowedQuestions...)
}

// tx runs fn in a transaction owned by the exported method calling it.
func (s *Service) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// keyedMutex is a mutex per key, created on first use.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// lock locks key's mutex and returns its unlock.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*sync.Mutex{}
	}
	m := k.locks[key]
	if m == nil {
		m = &sync.Mutex{}
		k.locks[key] = m
	}
	k.mu.Unlock()
	m.Lock()
	return m.Unlock
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

// NoBroker is a Broker for a server without IBKR access: every user is
// "not connected", so logs and settings work and nothing is ever sent.
type NoBroker struct{}

// ActiveAccount implements Broker.
func (NoBroker) ActiveAccount(context.Context, string) (Account, error) {
	return Account{}, errs.E(errs.BrokerNotConnected, "this server has no broker access configured")
}

// Session implements Broker.
func (NoBroker) Session(context.Context, string) (Conn, error) {
	return Conn{}, errs.E(errs.BrokerNotConnected, "this server has no broker access configured")
}

// Invalidate implements Broker.
func (NoBroker) Invalidate(string, *ibkr.Session, ibkr.Kind) {}
