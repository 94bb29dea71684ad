package auth

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/errs"
)

// resetMailbox records the links OnPasswordReset is given.
type resetMailbox struct {
	mu     sync.Mutex
	tokens map[string][]string // user id → tokens, oldest first
}

func (m *resetMailbox) record(ctx context.Context, tx pgx.Tx, userID, token string, expires time.Time) error {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM password_resets WHERE user_id = $1 AND token_hash = $2`, userID, digest(token)).Scan(&n); err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("the link's row is not in this transaction")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tokens == nil {
		m.tokens = map[string][]string{}
	}
	m.tokens[userID] = append(m.tokens[userID], token)
	return nil
}

func (m *resetMailbox) last(t *testing.T, userID string) string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := m.tokens[userID]
	if len(ts) == 0 {
		t.Fatalf("no reset link for %s", userID)
	}
	return ts[len(ts)-1]
}

func (m *resetMailbox) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, ts := range m.tokens {
		n += len(ts)
	}
	return n
}

// TestPasswordReset: a link is made only for a registered address, both
// answers are the same and take at least the answer time; the link sets a
// new password once, ends every session, and the next sign-in still needs
// the second factor; a used or expired link is refused.
func TestPasswordReset(t *testing.T) {
	t.Parallel()
	box := &resetMailbox{}
	var events []string
	const answer = 150 * time.Millisecond
	e := newEnv(t, func(c *Config) {
		c.OnPasswordReset = box.record
		c.ResetAnswerTime = answer
		c.OnSecurityEvent = func(_ context.Context, _ pgx.Tx, _, typ string, data map[string]any) error {
			if typ == "security.password_changed" {
				events = append(events, fmt.Sprint(data["via"]))
			}
			return nil
		}
	})
	ctx := context.Background()
	u, pw, secret := e.user(Subscriber)
	sess := e.signIn(u, pw, secret)

	for _, email := range []string{u.Email, "nobody-" + randomSuffix(t) + "@example.com"} {
		start := time.Now()
		if err := e.svc.RequestPasswordReset(ctx, email, "192.0.2.10"); err != nil {
			t.Fatalf("reset for %s: %v", email, err)
		}
		if took := time.Since(start); took < answer {
			t.Errorf("reset request answered after %v, before the answer time %v", took, answer)
		}
	}
	if n := box.count(); n != 1 {
		t.Fatalf("%d links made, want one (for the registered address only)", n)
	}
	token := e.secret(box.last(t, u.ID))

	err := e.svc.CompletePasswordReset(ctx, token, "short", "192.0.2.10")
	wantCode(t, "a too short password", err, errs.Invalid)
	err = e.svc.CompletePasswordReset(ctx, token+"x", "a brand new password", "192.0.2.10")
	wantCode(t, "a wrong token", err, errs.Invalid)

	next := e.secret("a brand new password")
	if err := e.svc.CompletePasswordReset(ctx, token, next, "192.0.2.10"); err != nil {
		t.Fatalf("reset with the link: %v", err)
	}
	if _, err := e.svc.Authenticate(ctx, sess); errs.CodeOf(err) != errs.Unauthenticated {
		t.Errorf("the session from before the reset: %v, want it ended", err)
	}
	_, err = e.svc.Login(ctx, u.Email, pw, "192.0.2.10")
	wantCode(t, "the old password", err, errs.Unauthenticated)
	res := e.passwordStep(u.Email, next, "192.0.2.10") // the new password
	if res.MFA != MFARequired {
		t.Errorf("sign-in after the reset: mfa %q, want %q (the second factor is still needed)", res.MFA, MFARequired)
	}
	if p, err := e.svc.Authenticate(ctx, res.SessionID); err != nil || p.Full {
		t.Errorf("the password alone gave a full session (%v)", err)
	}
	err = e.svc.CompletePasswordReset(ctx, token, e.secret("yet another password"), "192.0.2.10")
	wantCode(t, "the link a second time", err, errs.Invalid)

	// A link past its 30 minutes is refused, and so are the older links
	// of an account once one was used.
	e.clock.Advance(time.Hour) // past the address's hourly limit
	if err := e.svc.RequestPasswordReset(ctx, u.Email, "192.0.2.11"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RequestPasswordReset(ctx, u.Email, "192.0.2.11"); err != nil {
		t.Fatal(err)
	}
	e.mustNotBeLast(box, u.ID, token)
	older, newer := e.secret(box.tokens[u.ID][1]), e.secret(box.tokens[u.ID][2])
	if err := e.svc.CompletePasswordReset(ctx, newer, e.secret("the third password"), ""); err != nil {
		t.Fatalf("the newer link: %v", err)
	}
	err = e.svc.CompletePasswordReset(ctx, older, e.secret("the fourth password"), "")
	wantCode(t, "an older link after a reset", err, errs.Invalid)
	e.clock.Advance(time.Hour)
	if err := e.svc.RequestPasswordReset(ctx, u.Email, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(ResetLinkTTL + time.Second)
	err = e.svc.CompletePasswordReset(ctx, e.secret(box.last(t, u.ID)), e.secret("the fifth password"), "")
	wantCode(t, "an expired link", err, errs.Invalid)

	if diff := cmp.Diff([]string{"reset_link", "reset_link"}, events); diff != "" {
		t.Errorf("password_changed events (-want +got):\n%s", diff)
	}
	acts := e.auditActions(u.ID)
	var resets []string
	for _, a := range acts {
		if a == "password_reset.requested" || a == "password.reset" {
			resets = append(resets, a)
		}
	}
	want := []string{"password_reset.requested", "password.reset", "password_reset.requested", "password_reset.requested",
		"password.reset", "password_reset.requested"}
	if diff := cmp.Diff(want, resets); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

func (e *env) mustNotBeLast(box *resetMailbox, userID, token string) {
	e.t.Helper()
	if box.last(e.t, userID) == token {
		e.t.Fatal("no new link")
	}
}

// TestPasswordResetRateLimits: an address may ask three times an hour and
// an IP ten times, registered or not, with the same refusal.
func TestPasswordResetRateLimits(t *testing.T) {
	t.Parallel()
	box := &resetMailbox{}
	e := newEnv(t, func(c *Config) {
		c.OnPasswordReset = box.record
		c.ResetAnswerTime = time.Millisecond
	})
	ctx := context.Background()
	u, _, _ := e.user(Subscriber)
	unknown := "nobody-" + randomSuffix(t) + "@example.com"
	for _, email := range []string{u.Email, unknown} {
		for i := range ResetsPerAddress {
			if err := e.svc.RequestPasswordReset(ctx, email, fmt.Sprintf("198.51.100.%d", i)); err != nil {
				t.Fatalf("request %d for %s: %v", i+1, email, err)
			}
		}
		err := e.svc.RequestPasswordReset(ctx, email, "198.51.100.99")
		wantCode(t, "one request too many for "+email, err, errs.RateLimited)
		if e := errs.As(err); e == nil || e.RetryAfter <= 0 {
			t.Errorf("the refusal carries no Retry-After: %v", err)
		}
	}
	if n := box.count(); n != ResetsPerAddress {
		t.Errorf("%d links, want %d", n, ResetsPerAddress)
	}
	for i := range ResetsPerIP {
		if err := e.svc.RequestPasswordReset(ctx, fmt.Sprintf("spray%d-%s@example.com", i, randomSuffix(t)), "203.0.113.5"); err != nil {
			t.Fatalf("request %d from one IP: %v", i+1, err)
		}
	}
	err := e.svc.RequestPasswordReset(ctx, "spray-last@example.com", "203.0.113.5")
	wantCode(t, "one request too many from an IP", err, errs.RateLimited)
	e.clock.Advance(time.Hour + time.Second)
	if err := e.svc.RequestPasswordReset(ctx, u.Email, "203.0.113.5"); err != nil {
		t.Errorf("an hour later: %v", err)
	}
}
