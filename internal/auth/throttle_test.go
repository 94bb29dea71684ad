package auth

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/errs"
)

func TestBackoffSchedule(t *testing.T) {
	t.Parallel()
	p := accountPolicy()
	got := map[int]time.Duration{}
	for _, n := range []int{0, 4, 5, 6, 7, 10, 50, 99} {
		got[n] = p.wait(n)
	}
	want := map[int]time.Duration{0: 0, 4: 0, 5: 30 * time.Second, 6: time.Minute, 7: 2 * time.Minute,
		10: 15 * time.Minute, 50: 15 * time.Minute, 99: 15 * time.Minute}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
}

// TestWrongCodesBackOff: five wrong TOTP codes, then 429 with Retry-After,
// even for the right code, until the back-off has run.
func TestWrongCodesBackOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	u, pw, secret := e.user(Subscriber)
	sid := e.passwordStep(u.Email, pw, "192.0.2.50").SessionID
	wrong := e.secret(fmt.Sprintf("%06d", (mustAtoi(e.code(secret, 0))+1)%1000000))
	for i := range 5 {
		_, _, err := e.svc.CompleteLogin(ctx, sid, SecondFactor{Code: wrong}, "192.0.2.50")
		wantCode(t, fmt.Sprintf("wrong code %d", i+1), err, errs.Unauthenticated)
	}
	_, _, err := e.svc.CompleteLogin(ctx, sid, SecondFactor{Code: e.code(secret, 0)}, "192.0.2.50")
	wantCode(t, "right code during back-off", err, errs.RateLimited)
	if ra := errs.As(err).RetryAfter; ra != 30*time.Second {
		t.Errorf("Retry-After = %v, want 30s", ra)
	}
	e.clock.Advance(20 * time.Second) // same step, 10 s of back-off left
	_, _, err = e.svc.CompleteLogin(ctx, sid, SecondFactor{Code: e.code(secret, 0)}, "192.0.2.50")
	if ra := errs.As(err).RetryAfter; errs.CodeOf(err) != errs.RateLimited || ra != 10*time.Second {
		t.Errorf("after 20 s: %v, Retry-After %v; want rate_limited with 10s", err, ra)
	}
	e.clock.Advance(10 * time.Second)
	if _, _, err := e.svc.CompleteLogin(ctx, sid, SecondFactor{Code: e.code(secret, 0)}, "192.0.2.50"); err != nil {
		t.Fatalf("after the back-off: %v", err)
	}
	var failures int
	if err := e.svc.pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE user_id = $1 AND action = 'login.failure'
		AND ip = '192.0.2.50' AND details->>'stage' = 'totp'`, u.ID).Scan(&failures); err != nil {
		t.Fatal(err)
	}
	if failures != 5 {
		t.Errorf("%d failures recorded, want 5", failures)
	}
	// A full sign-in clears the account's count.
	_, err = e.svc.Login(ctx, u.Email, e.secret("wrong password!"), "192.0.2.50")
	wantCode(t, "one wrong password after success", err, errs.Unauthenticated)
	if _, err := e.svc.Login(ctx, u.Email, pw, "192.0.2.50"); err != nil {
		t.Errorf("right password after one failure: %v", err)
	}
}

func mustAtoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestUnknownEmailsAreThrottledToo: the throttle is keyed by the email as
// typed, so probing for accounts meets the same back-off.
func TestUnknownEmailsAreThrottledToo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := range 5 {
		_, err := e.svc.Login(context.Background(), "ghost@example.com", "whatever-pw", fmt.Sprintf("198.51.100.%d", i))
		wantCode(t, "unknown email", err, errs.Unauthenticated)
	}
	_, err := e.svc.Login(context.Background(), "GHOST@example.com", "whatever-pw", "198.51.100.99")
	wantCode(t, "sixth attempt", err, errs.RateLimited)
}

// TestPerAddressThrottle: one address spraying passwords across accounts
// is stopped after 20 failures, while other addresses still get in.
func TestPerAddressThrottle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u, pw, _ := e.user(Subscriber)
	for i := range 20 {
		_, err := e.svc.Login(context.Background(), fmt.Sprintf("spray%d@example.com", i), "guess-password", "203.0.113.66")
		wantCode(t, "spray", err, errs.Unauthenticated)
	}
	_, err := e.svc.Login(context.Background(), u.Email, pw, "203.0.113.66")
	wantCode(t, "right password from the spraying address", err, errs.RateLimited)
	if _, err := e.svc.Login(context.Background(), u.Email, pw, "203.0.113.67"); err != nil {
		t.Fatalf("right password from another address: %v", err)
	}
	e.clock.Advance(61 * time.Minute) // the address's count decays after an hour of quiet
	if _, err := e.svc.Login(context.Background(), u.Email, pw, "203.0.113.66"); err != nil {
		t.Fatalf("after the decay: %v", err)
	}
}

// TestLockoutAfterConsecutiveFailures: 100 failures in a row (waiting out
// each back-off) lock the account; the right password then gets "locked",
// and an admin enabling it again lifts the lock.
func TestLockoutAfterConsecutiveFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	admin, _, _ := e.user(Admin)
	u, pw, secret := e.user(Subscriber)
	e.signIn(u, pw, secret)
	for i := range LockAfter {
		_, err := e.svc.Login(ctx, u.Email, "wrong-password", fmt.Sprintf("10.0.%d.%d", i/250, i%250))
		wantCode(t, fmt.Sprintf("failure %d", i+1), err, errs.Unauthenticated)
		e.clock.Advance(15 * time.Minute)
	}
	var locked bool
	if err := e.svc.pool.QueryRow(ctx, `SELECT locked_at IS NOT NULL FROM users WHERE id = $1`, u.ID).Scan(&locked); err != nil {
		t.Fatal(err)
	}
	if !locked {
		t.Fatal("not locked after 100 consecutive failures")
	}
	_, err := e.svc.Login(ctx, u.Email, pw, "10.1.1.1")
	wantCode(t, "right password when locked", err, errs.Forbidden)
	var n int
	e.svc.pool.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE user_id = $1`, u.ID).Scan(&n)
	if n != 0 {
		t.Errorf("%d sessions left after the lock", n)
	}
	if _, err := e.svc.SetDisabled(ctx, admin.ID, u.ID, false, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Login(ctx, u.Email, pw, "10.1.1.1"); err != nil {
		t.Fatalf("after an admin lifted the lock: %v", err)
	}
	acts := e.auditActions(u.ID)
	if diff := cmp.Diff([]string{"user.locked", "login.refused", "user.enabled", "login.password"}, acts[len(acts)-4:]); diff != "" {
		t.Errorf("audit tail (-want +got):\n%s", diff)
	}
}

// TestParallelGuessesRunOneAtATime: while one attempt on an account runs,
// a second is refused instead of racing past the throttle.
func TestParallelGuessesRunOneAtATime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	end, err := e.svc.beginAttempt("Someone@Example.com")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Login(context.Background(), "someone@example.com", "password-guess", "")
	wantCode(t, "parallel attempt", err, errs.RateLimited)
	end()
	_, err = e.svc.Login(context.Background(), "someone@example.com", "password-guess", "")
	wantCode(t, "attempt after the first ended", err, errs.Unauthenticated)
}
