package auth

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/clocktest"
	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/logging/logtest"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/seal"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func newClock() *clocktest.Clock {
	// A step boundary, so tests know exactly which step "now" is in.
	return clocktest.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
}

// cheapArgon2 keeps tests fast; production cost is proven separately.
var cheapArgon2 = Argon2Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

// env is one test's service, clock, captured log and the secrets it saw,
// which the log must never contain.
type env struct {
	t     *testing.T
	svc   *Service
	clock *clocktest.Clock
	logs  *logtest.Sink
}

func newEnv(t *testing.T, mod ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), logs: &logtest.Sink{}}
	cfg := Config{
		Pool:   pgtest.Pool(t),
		Sealer: seal.RandomRing("test"),
		Log:    zerolog.New(e.logs).Level(zerolog.TraceLevel),
		Clock:  e.clock.Now,
		Argon2: cheapArgon2,
	}
	for _, m := range mod {
		m(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	t.Cleanup(e.scanLogs)
	return e
}

// secret remembers s as something no log line may contain, and returns it.
func (e *env) secret(s string) string { return e.logs.Secret(s) }

func (e *env) scanLogs() {
	secrets := e.logs.Secrets()
	for _, i := range e.logs.Leaks() {
		e.t.Errorf("the log contains a secret (%d characters)", len(secrets[i]))
	}
}

// user creates an account with 2FA on and returns it with its password
// and TOTP secret.
func (e *env) user(role Role) (User, string, string) {
	e.t.Helper()
	pw := e.secret("correct horse " + randomSuffix(e.t))
	email := "u" + randomSuffix(e.t) + "@example.com"
	u, en, err := e.svc.CreateUserWithTOTP(context.Background(), NewUser{Email: email, Role: role, Password: pw}, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return u, pw, e.secret(en.Secret)
}

// code returns the TOTP code of secret at the clock's time.
func (e *env) code(secret string, offset time.Duration) string {
	e.t.Helper()
	c, err := TOTPCode(secret, e.clock.Now().Add(offset))
	if err != nil {
		e.t.Fatal(err)
	}
	return e.secret(c)
}

// passwordStep is sign-in's first step, which must succeed: email and
// password from ip. The session id it returns is remembered as a secret.
func (e *env) passwordStep(email, pw, ip string) LoginResult {
	e.t.Helper()
	res, err := e.svc.Login(context.Background(), email, pw, ip)
	if err != nil {
		e.t.Fatalf("login: %v", err)
	}
	e.secret(res.SessionID)
	return res
}

// signIn does both steps and returns a fully authenticated session id.
func (e *env) signIn(u User, pw, secret string) string {
	e.t.Helper()
	res := e.passwordStep(u.Email, pw, "192.0.2.1")
	id, _, err := e.svc.CompleteLogin(context.Background(), res.SessionID, SecondFactor{Code: e.code(secret, 0)}, "192.0.2.1")
	if err != nil {
		e.t.Fatalf("second step: %v", err)
	}
	return e.secret(id)
}

// recoveryCodes regenerates userID's recovery codes and returns them, each
// a secret the log must never hold.
func (e *env) recoveryCodes(userID string) []string {
	e.t.Helper()
	codes, err := e.svc.RegenerateRecoveryCodes(context.Background(), userID, "")
	if err != nil {
		e.t.Fatal(err)
	}
	for _, c := range codes {
		e.secret(c)
	}
	return codes
}

// userWithRecoveryCodes creates a subscriber with TOTP, signs it in and
// gives it recovery codes; it returns the user, its password and the codes.
func (e *env) userWithRecoveryCodes() (User, string, []string) {
	e.t.Helper()
	u, pw, secret := e.user(Subscriber)
	e.signIn(u, pw, secret)
	return u, pw, e.recoveryCodes(u.ID)
}

// signInWithRecoveryCode signs u in with its password and a recovery code
// as the second factor and returns the second step's error.
func (e *env) signInWithRecoveryCode(u User, pw, code string) error {
	e.t.Helper()
	res := e.passwordStep(u.Email, pw, "")
	_, _, err := e.svc.CompleteLogin(context.Background(), res.SessionID, SecondFactor{RecoveryCode: code}, "")
	return err
}

func randomSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := readFull(cryptoRand{}, b); err != nil {
		t.Fatal(err)
	}
	return strings.ToLower(recoveryEncoding.EncodeToString(b))
}

func wantCode(t *testing.T, what string, err error, code errs.Code) {
	t.Helper()
	if got := errs.CodeOf(err); got != code {
		t.Fatalf("%s: error code %q (%v), want %q", what, got, err, code)
	}
}

// auditActions returns the actions recorded for userID, oldest first.
func (e *env) auditActions(userID string) []string {
	e.t.Helper()
	rows, err := e.svc.pool.Query(context.Background(), `SELECT action FROM audit_events WHERE user_id = $1 ORDER BY id`, userID)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

type cryptoRand struct{}

func (cryptoRand) Read(b []byte) (int, error) { return rand.Read(b) }

// recordingNotifier records the security events the owner is told of by
// e-mail when an account is locked or its address signs up again.
type recordingNotifier struct {
	mu  sync.Mutex
	got []string
}

// record is an OnSecurityEvent.
func (n *recordingNotifier) record(_ context.Context, _ pgx.Tx, userID, eventType string, _ map[string]any) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch eventType {
	case "security.account_locked":
		n.got = append(n.got, "locked:"+userID)
	case "security.signup_attempt":
		n.got = append(n.got, "signup:"+userID)
	}
	return nil
}

func (n *recordingNotifier) events() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.got...)
}
