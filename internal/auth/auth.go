// Package auth is Ordertune's front door: accounts with roles, argon2id
// passwords, mandatory TOTP with a replay guard, recovery codes, server-side
// sessions, scoped API tokens, throttling and lockout, and the audit rows
// that record each of these changes.
//
// Every exported method owns its transaction; the SQL sits next to the code
// that runs it. Errors meant for the client are *errs.Error values; nothing
// returned or logged ever carries a password, a code, a secret, a session
// id or a token.
package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ids"
)

// Role is what an account may do.
type Role string

// The roles an account can have.
const (
	Admin      Role = "admin"
	Subscriber Role = "subscriber"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool { return r == Admin || r == Subscriber }

// ScopeSignalsWrite lets an API token publish signals.
const ScopeSignalsWrite = "signals:write"

// KnownScope reports whether s is a scope an API token may carry.
func KnownScope(s string) bool {
	switch s {
	case ScopeSignalsWrite:
		return true
	}
	return false
}

// Sealer encrypts and authenticates small secrets with additional data
// binding them to their owner and field; *seal.Ring implements it.
type Sealer interface {
	Seal(plaintext []byte, aad ...string) ([]byte, error)
	Open(ciphertext []byte, aad ...string) ([]byte, error)
}

// Config configures a Service. Pool is required; the zero value of every
// other field is the production default.
type Config struct {
	Pool *pgxpool.Pool
	// Sealer seals TOTP secrets; without one, 2FA enrolment is unavailable.
	Sealer Sealer
	Log    zerolog.Logger
	// Clock returns the current time; tests move it to cross TOTP steps,
	// session timeouts and back-off windows.
	Clock func() time.Time
	// Rand is the source of session ids, tokens, codes and TOTP secrets.
	Rand io.Reader

	SessionIdle   time.Duration // default 30 minutes
	SessionMaxAge time.Duration // default 12 hours
	SignupOpen    bool
	Issuer        string // the TOTP issuer shown in authenticator apps; default "Ordertune"

	// Argon2 overrides the password hashing cost. Only tests set it, to
	// cheap values; the zero value means DefaultArgon2().
	Argon2 Argon2Params
	// RecoveryArgon2 overrides the recovery codes' hashing cost; the zero
	// value means RecoveryArgon2().
	RecoveryArgon2 Argon2Params
	// DeviceMaxAge is how long a remembered device is remembered after
	// its last full sign-in; default 180 days.
	DeviceMaxAge time.Duration
	// SignupPerIP is how many sign-ups one address may make per hour;
	// default 5.
	SignupPerIP int
	// MaxConcurrentHashes bounds how many password hashes run at once, so
	// a burst of logins cannot exhaust memory (each takes Argon2.Memory).
	MaxConcurrentHashes int // default 2

	// OnSecurityEvent, when set, is called in the transaction of a
	// completed sign-in from a browser that is not a remembered device of
	// the account, a password change (also by a reset link), a token creation, an account
	// locked after failed sign-ins and a sign-up with a registered address,
	// with the event type ("security.sign_in", "security.password_changed",
	// "security.token_created", "security.account_locked",
	// "security.signup_attempt"), so the notification (the owner's e-mail)
	// commits or rolls back with the change.
	OnSecurityEvent func(ctx context.Context, tx pgx.Tx, userID, eventType string, data map[string]any) error

	// OnPasswordReset, when set, is called in the transaction that stores
	// a password reset link, with the link's token (a secret: it goes in
	// the e-mail and nowhere else) and when it expires; it queues the
	// e-mail to the account's owner.
	OnPasswordReset func(ctx context.Context, tx pgx.Tx, userID, token string, expires time.Time) error
	// ResetAnswerTime is the least time a reset request takes, known
	// address or not; default DefaultResetAnswerTime.
	ResetAnswerTime time.Duration
}

// Service implements accounts, 2FA, sessions and tokens.
type Service struct {
	pool   *pgxpool.Pool
	sealer Sealer
	log    zerolog.Logger
	now    func() time.Time
	rand   io.Reader
	idle   time.Duration
	maxAge time.Duration
	signup bool
	issuer string

	argon         Argon2Params
	recoveryArgon Argon2Params
	deviceMaxAge  time.Duration
	signupPerIP   int

	hashSem chan struct{}
	dummyMu sync.Mutex
	dummy   string // hash of a random password, verified for unknown emails

	mu       sync.Mutex
	inflight map[string]bool // throttle keys with an attempt under way

	onEvent func(ctx context.Context, tx pgx.Tx, userID, eventType string, data map[string]any) error

	onReset         func(ctx context.Context, tx pgx.Tx, userID, token string, expires time.Time) error
	resetAnswerTime time.Duration
}

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Pool == nil {
		return nil, errors.New("auth: no database pool")
	}
	s := &Service{
		pool:     cfg.Pool,
		sealer:   cfg.Sealer,
		log:      cfg.Log,
		now:      cfg.Clock,
		rand:     cfg.Rand,
		idle:     cfg.SessionIdle,
		maxAge:   cfg.SessionMaxAge,
		signup:   cfg.SignupOpen,
		issuer:   cfg.Issuer,
		argon:    cfg.Argon2,
		inflight: map[string]bool{},

		recoveryArgon: cfg.RecoveryArgon2,
		deviceMaxAge:  cfg.DeviceMaxAge,
		signupPerIP:   cfg.SignupPerIP,
		onEvent:       cfg.OnSecurityEvent,

		onReset:         cfg.OnPasswordReset,
		resetAnswerTime: cfg.ResetAnswerTime,
	}
	if s.resetAnswerTime <= 0 {
		s.resetAnswerTime = DefaultResetAnswerTime
	}
	if s.recoveryArgon == (Argon2Params{}) {
		s.recoveryArgon = RecoveryArgon2()
	}
	if s.deviceMaxAge <= 0 {
		s.deviceMaxAge = 180 * 24 * time.Hour
	}
	if s.signupPerIP <= 0 {
		s.signupPerIP = 5
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.idle <= 0 {
		s.idle = 30 * time.Minute
	}
	if s.maxAge <= 0 {
		s.maxAge = 12 * time.Hour
	}
	if s.issuer == "" {
		s.issuer = "Ordertune"
	}
	if s.argon == (Argon2Params{}) {
		s.argon = DefaultArgon2()
	}
	if s.argon.KeyLen < 32 {
		s.argon.KeyLen = 32
	}
	if s.argon.SaltLen < 16 {
		s.argon.SaltLen = 16
	}
	if s.argon.Memory == 0 || s.argon.Time == 0 || s.argon.Threads == 0 {
		return nil, errors.New("auth: argon2 memory, time and threads must be positive")
	}
	n := cfg.MaxConcurrentHashes
	if n <= 0 {
		n = 2
	}
	s.hashSem = make(chan struct{}, n)
	return s, nil
}

// dummyHash returns the hash an unknown email's password is checked
// against: made once, with the service's own parameters, so that check
// costs exactly what a real one costs.
func (s *Service) dummyHash(ctx context.Context) (string, error) {
	s.dummyMu.Lock()
	defer s.dummyMu.Unlock()
	if s.dummy != "" {
		return s.dummy, nil
	}
	pw, err := s.randomToken(24)
	if err != nil {
		return "", err
	}
	h, err := s.hashPassword(ctx, pw)
	if err != nil {
		return "", err // not kept: a cancelled request must not break later ones
	}
	s.dummy = h
	return h, nil
}

// SignupOpen reports whether anyone may create a subscriber account.
func (s *Service) SignupOpen() bool { return s.signup }

// User is an account as the rest of the product sees it.
type User struct {
	ID          string
	Email       string
	Role        Role
	TOTPEnabled bool
	Disabled    bool
	Locked      bool
	CreatedAt   time.Time
}

// Principal is who a request acts for: a user through a session, or an
// admin's API token.
type Principal struct {
	UserID      string
	Email       string
	Role        Role     // empty for API tokens: they act only through Scopes
	Scopes      []string // the token's scopes; nil for sessions
	TokenID     string   // the API token's id; "" for sessions
	Full        bool     // password and second factor done (always true for tokens)
	TOTPEnabled bool
	// StepUpUntil is when the session's last step-up stops counting; the
	// zero time when it never stepped up (always for tokens).
	StepUpUntil time.Time
}

// ViaToken reports whether the principal authenticated with an API token.
func (p Principal) ViaToken() bool { return p.TokenID != "" }

// HasScope reports whether the principal's API token carries scope.
func (p Principal) HasScope(scope string) bool {
	for _, s := range p.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// ValidID reports whether id is a UUID in its canonical text form; ids
// from URLs are checked with it so a malformed one is "not found" rather
// than a database error.
func ValidID(id string) bool { return ids.Valid(id) }

const userColumns = `id, email, role, totp_enabled, disabled_at IS NOT NULL, locked_at IS NOT NULL, created_at`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.Role, &u.TOTPEnabled, &u.Disabled, &u.Locked, &u.CreatedAt)
	u.CreatedAt = u.CreatedAt.UTC()
	return u, err
}

// securityEvent reports a security event to OnSecurityEvent, in tx.
func (s *Service) securityEvent(ctx context.Context, tx pgx.Tx, userID, eventType string, data map[string]any) error {
	if s.onEvent == nil {
		return nil
	}
	return s.onEvent(ctx, tx, userID, eventType, data)
}

// tx runs fn in a transaction and commits it when fn succeeds.
func (s *Service) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// internal wraps an unexpected failure of op for the log; the client sees
// only "internal error".
func internal(op string, err error) error {
	if e := errs.As(err); e != nil && e.Code != errs.Internal {
		return err
	}
	return &errs.Error{Code: errs.Internal, Err: fmt.Errorf("%s: %w", op, err)}
}

func normalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }
