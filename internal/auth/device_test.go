package auth

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/errs"
)

// TestRememberedDevicePassesLockout: someone guessing at an e-mail locks
// the account (its owner is notified), yet the owner, from a browser that
// signed in before, still gets in with password and TOTP, during the
// back-off and despite the lock, which that sign-in lifts. Without the
// device, or with another account's, the lock holds. A remembered device
// guessing passwords is throttled on its own count.
func TestRememberedDevicePassesLockout(t *testing.T) {
	t.Parallel()
	notified := &recordingNotifier{}
	e := newEnv(t, func(c *Config) { c.OnSecurityEvent = notified.record })
	ctx := context.Background()
	u, pw, secret := e.user(Subscriber)
	other, otherPw, otherSecret := e.user(Subscriber)

	// The owner signs in once; the browser is remembered.
	e.signIn(u, pw, secret)
	device, err := e.svc.RememberDevice(ctx, u.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	e.secret(device)
	if again, err := e.svc.RememberDevice(ctx, u.ID, device); err != nil || again != device {
		t.Fatalf("renewing the same device gave %q, %v", again, err)
	}
	e.clock.Advance(30 * time.Second)
	e.signIn(other, otherPw, otherSecret)
	otherDevice, err := e.svc.RememberDevice(ctx, other.ID, device) // a second user on the same browser
	if err != nil || otherDevice == device {
		t.Fatalf("another user's sign-in kept the first user's device token (%v)", err)
	}
	e.secret(otherDevice)

	// An attacker locks the account.
	for i := range LockAfter {
		_, err := e.svc.Login(ctx, u.Email, "wrong-password", fmt.Sprintf("10.9.%d.%d", i/250, i%250))
		wantCode(t, fmt.Sprintf("failure %d", i+1), err, errs.Unauthenticated)
		e.clock.Advance(15 * time.Minute)
	}
	_, _ = e.svc.Login(ctx, u.Email, "wrong-password", "10.9.9.9") // the back-off runs now
	if diff := cmp.Diff([]string{"locked:" + u.ID}, notified.events()); diff != "" {
		t.Errorf("owner notifications (-want +got):\n%s", diff)
	}
	_, err = e.svc.Login(ctx, u.Email, pw, "10.1.1.1")
	wantCode(t, "right password without the device", err, errs.RateLimited)
	_, err = e.svc.LoginFrom(ctx, u.Email, pw, "10.1.1.1", otherDevice)
	wantCode(t, "right password with another account's device", err, errs.RateLimited)

	// The owner, from the remembered browser.
	e.clock.Advance(30 * time.Second)
	res, err := e.svc.LoginFrom(ctx, u.Email, pw, "10.1.1.1", device)
	if err != nil {
		t.Fatalf("password from the remembered device: %v", err)
	}
	if _, _, err := e.svc.CompleteLogin(ctx, e.secret(res.SessionID), SecondFactor{Code: e.code(secret, 0)}, "10.1.1.1"); err != nil {
		t.Fatalf("TOTP from the remembered device: %v", err)
	}
	var locked bool
	if err := e.svc.pool.QueryRow(ctx, `SELECT locked_at IS NOT NULL FROM users WHERE id = $1`, u.ID).Scan(&locked); err != nil || locked {
		t.Errorf("still locked after the owner's sign-in (%v)", err)
	}
	if acts := e.auditActions(u.ID); acts[len(acts)-2] != "user.unlocked" {
		t.Errorf("audit tail %v, want user.unlocked before login.success", acts[len(acts)-3:])
	}

	// A stolen device token does not buy unlimited guesses: the device's
	// own count throttles it after five failures.
	for i := range 5 {
		_, err := e.svc.LoginFrom(ctx, u.Email, "another-guess", fmt.Sprintf("10.8.0.%d", i), device)
		wantCode(t, fmt.Sprintf("device guess %d", i+1), err, errs.Unauthenticated)
	}
	_, err = e.svc.LoginFrom(ctx, u.Email, pw, "10.8.0.9", device)
	wantCode(t, "sixth try from the device", err, errs.RateLimited)

	// An expired device is a stranger.
	e.clock.Advance(e.svc.DeviceMaxAge() + time.Hour)
	if owner, err := e.svc.deviceOwner(ctx, device, normalizeEmail(u.Email)); err != nil || owner != "" {
		t.Errorf("expired device still recognized (%q, %v)", owner, err)
	}
}
