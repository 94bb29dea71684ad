package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/seal"
	"github.com/ordertune/ordertune/internal/trading"
)

// Config holds what a Service needs.
type Config struct {
	Pool *pgxpool.Pool
	// Ring seals and opens the credentials.
	Ring *seal.Ring
	// IBKR configures the IBKR client (base URL, HTTP client, clock); its
	// Pacer is ignored: the cache keeps one per account.
	IBKR ibkr.Options
	// Cache tunes the session cache.
	Cache CacheConfig
	// AllowedQuestions are the reply-question message ids (see
	// DefaultAllowedQuestions) suppressed in every new brokerage session and
	// confirmed when IBKR still asks them on an order; any other question
	// declines the order with IBKR's text. Nil means
	// DefaultAllowedQuestions; an empty list allows none. This is the one
	// place the allowlist is configured.
	AllowedQuestions []string
	// Now is the clock of timestamps; nil means time.Now.
	Now func() time.Time
	// OnCompeting, when set, is called in the transaction that records
	// that another login holds a user's brokerage session (or that
	// Ordertune took it back), once per episode, so the user's
	// broker.competing_session notification commits with the audit row.
	OnCompeting func(ctx context.Context, tx pgx.Tx, userID string, ev CompetingSession) error
	// Log receives what cannot be recorded of a session's events.
	Log zerolog.Logger
	// OnActivated, when set, is called in the transaction that records
	// a test turning pending_activation credentials into connected ones
	// (IBKR has activated the consumer key), so the user's
	// broker.activated notification commits with the change.
	OnActivated func(ctx context.Context, tx pgx.Tx, userID string, mode Mode) error
}

// Service manages users' broker connections and their session cache.
type Service struct {
	pool     *pgxpool.Pool
	ring     *seal.Ring
	ibkrOpts ibkr.Options
	now      func() time.Time
	cache    *Cache
	orders   *Orders
	// allowed is the platform's reply-question allowlist.
	allowed     []string
	onCompeting func(ctx context.Context, tx pgx.Tx, userID string, ev CompetingSession) error

	onActivated func(ctx context.Context, tx pgx.Tx, userID string, mode Mode) error
}

// New returns a Service; start its keep-alive with Cache().Run.
func New(cfg Config) (*Service, error) {
	if cfg.Pool == nil || cfg.Ring == nil {
		return nil, errors.New("broker: a database pool and a key ring are required")
	}
	s := &Service{pool: cfg.Pool, ring: cfg.Ring, ibkrOpts: cfg.IBKR, now: cfg.Now, onActivated: cfg.OnActivated}
	s.ibkrOpts.Pacer = nil
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.Cache.Now == nil {
		cfg.Cache.Now = s.now
	}
	if cfg.AllowedQuestions == nil {
		cfg.AllowedQuestions = DefaultAllowedQuestions()
	}
	s.allowed = slices.Clone(cfg.AllowedQuestions)
	s.cache = newCache(cfg.Cache, s.ibkrOpts, s.loadActive, cfg.AllowedQuestions)
	s.cache.suppressFor = func(ctx context.Context, userID string) ([]string, error) {
		pol, err := s.questionPolicy(ctx, userID)
		return pol.Allowed, err
	}
	s.orders = NewOrders(s, cfg.AllowedQuestions)
	s.orders.policy = s.questionPolicy
	s.onCompeting = cfg.OnCompeting
	s.cache.competingPref = s.SessionPreference
	log := cfg.Log
	s.cache.onSessionEvent = func(ctx context.Context, userID string, conn Conn, ev SessionEvent) {
		if err := s.sessionEvent(ctx, userID, conn, ev); err != nil {
			log.Error().Err(err).Str("user_id", userID).Str("action", ev.Action).Msg("could not record a competing IBKR login")
		}
	}
	return s, nil
}

// Cache returns the per-tenant session cache (Session, Do, Report,
// AccountID, and the keep-alive's Run).
func (s *Service) Cache() *Cache { return s.cache }

// Orders returns the trading feature's Broker: orders, cancels and their
// states through the session cache.
func (s *Service) Orders() *Orders { return s.orders }

// Do runs fn with the user's ready session; see Cache.Do.
func (s *Service) Do(ctx context.Context, userID string, fn func(ctx context.Context, s *ibkr.Session, conn Conn) error) error {
	return s.cache.Do(ctx, userID, fn)
}

// Warm makes the user's session ready; see Cache.Warm.
func (s *Service) Warm(ctx context.Context, userID string) error {
	return s.cache.Warm(ctx, userID)
}

// loadActive reads the user's active connection and decrypts and parses
// its credentials for one handshake. The caller drops them right after.
// The saved row was checked when it was saved (ibkr.ParseSavedCredentials).
// When known was decrypted from the same sealed columns, the access token
// secret is taken from it (see knownSecret); the secret to remember is
// returned either way.
func (s *Service) loadActive(ctx context.Context, userID string, known knownSecret) (Conn, *ibkr.Credentials, knownSecret, error) {
	// One statement: every handshake reads it, and a burst of cold
	// tenants reads it thousands of times at once.
	row, err := scanSealed(s.pool.QueryRow(ctx, selectSealed+` WHERE user_id = $1 AND mode = `+activeModeSQL, userID))
	mode := row.mode
	if errors.Is(err, pgx.ErrNoRows) {
		if mode, err = s.ActiveMode(ctx, userID); err != nil {
			return Conn{}, nil, knownSecret{}, errs.Wrap(fmt.Errorf("load connection: %w", err), errs.Unavailable, "the broker connection could not be read")
		}
		return Conn{}, nil, knownSecret{}, errs.E(errs.BrokerNotConnected, "no %s IBKR connection is saved: add it under Settings → Broker", mode)
	}
	if err != nil {
		return Conn{}, nil, knownSecret{}, errs.Wrap(fmt.Errorf("load connection: %w", err), errs.Unavailable, "the broker connection could not be read")
	}
	o, err := s.open(userID, row)
	if err != nil {
		return Conn{}, nil, knownSecret{}, fmt.Errorf("load %s connection: %w", mode, err)
	}
	defer o.wipe()
	of := row.secretDigest()
	// The row was checked when it was saved and sealed since: the DH
	// prime's primality test is not repeated, nor, when known matches, the
	// secret's decryption.
	var secret []byte
	if known.matches(of) {
		secret = bytes.Clone(known.secret)
	}
	creds, err := ibkr.ParseSavedCredentials(credentialsInput(o.input), secret)
	if err != nil {
		return Conn{}, nil, knownSecret{}, errs.Wrap(err, errs.BrokerNotConnected, "the saved IBKR credentials are not valid any more: save them again")
	}
	conn := Conn{UserID: userID, Mode: mode, ConsumerKey: creds.ConsumerKey, AccountID: creds.AccountID}
	return conn, creds, knownSecret{of: of, secret: bytes.Clone(creds.AccessTokenSecret)}, nil
}

// OpenSaved decrypts the user's saved credential set for mode and reports
// only whether every field opened. It exists for operations (key rotation
// checks) and tests: the secrets never leave the package.
func (s *Service) OpenSaved(ctx context.Context, userID string, mode Mode) error {
	row, err := s.loadSealed(ctx, userID, mode)
	if err != nil {
		return err
	}
	o, err := s.open(userID, row)
	if err != nil {
		return fmt.Errorf("open %s connection: %w", mode, err)
	}
	o.wipe()
	return nil
}

// Account is the IBKR account of a user's active connection: the trading
// feature's Account.
type Account = trading.Account

// ActiveAccount returns the account of the user's active connection
// without calling IBKR: from the cached session when there is one, else
// from the database (opening the sealed account id only).
// errs.BrokerNotConnected when no connection is saved for the active mode.
func (s *Service) ActiveAccount(ctx context.Context, userID string) (Account, error) {
	if st, ok := s.cache.conn(userID); ok {
		return Account{Mode: st.Mode, ID: st.AccountID, Masked: MaskAccountID(st.AccountID)}, nil
	}
	var m string
	var sealed []byte
	err := s.pool.QueryRow(ctx, `SELECT mode, account_id FROM broker_connections WHERE user_id = $1 AND mode = `+activeModeSQL,
		userID).Scan(&m, &sealed)
	mode := Mode(m)
	if errors.Is(err, pgx.ErrNoRows) {
		if mode, err = s.ActiveMode(ctx, userID); err != nil {
			return Account{}, fmt.Errorf("active account: %w", err)
		}
		return Account{}, errs.E(errs.BrokerNotConnected, "no %s IBKR connection is saved: add it under Settings → Broker", mode)
	}
	if err != nil {
		return Account{}, fmt.Errorf("active account: %w", err)
	}
	b, err := s.ring.Open(sealed, aad(userID, mode, fieldAccountID)...)
	if err != nil {
		return Account{}, fmt.Errorf("active account: %w", credentialsUnavailable(userID, mode, fieldAccountID, sealed, err))
	}
	id := string(b)
	return Account{Mode: mode, ID: id, Masked: MaskAccountID(id)}, nil
}

// ActiveMode returns the mode of the user's active connection (paper when
// none was chosen), from the cached session when there is one: the
// replicas' routing asks it before a tenant's lease is known.
func (s *Service) ActiveMode(ctx context.Context, userID string) (Mode, error) {
	if st, ok := s.cache.conn(userID); ok {
		return st.Mode, nil
	}
	var m string
	err := s.pool.QueryRow(ctx, `SELECT active_mode FROM broker_settings WHERE user_id = $1`, userID).Scan(&m)
	if errors.Is(err, pgx.ErrNoRows) {
		return Paper, nil
	}
	if err != nil {
		return "", fmt.Errorf("active mode: %w", err)
	}
	return Mode(m), nil
}
