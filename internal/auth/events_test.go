package auth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/errs"
)

// TestSecurityEventsInTheirTransaction: a sign-in, a password change and a
// token creation report their event inside their own transaction, so a
// failing report undoes the change.
func TestSecurityEventsInTheirTransaction(t *testing.T) {
	var got []string
	var fail error
	e := newEnv(t, func(c *Config) {
		c.OnSecurityEvent = func(ctx context.Context, tx pgx.Tx, userID, typ string, data map[string]any) error {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE user_id = $1`, userID).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return errors.New("called outside the change's transaction")
			}
			if fail != nil {
				return fail
			}
			got = append(got, typ)
			return nil
		}
	})
	ctx := context.Background()
	u, pw, secret := e.user(Admin)
	sess := e.signIn(u, pw, secret)
	newPw := e.secret("another good password")
	if err := e.svc.ChangePassword(ctx, u.ID, sess, pw, newPw, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.CreateToken(ctx, u.ID, "feed", []string{ScopeSignalsWrite}, ""); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"security.sign_in", "security.password_changed", "security.token_created"}, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	fail = errors.New("queue down")
	err := e.svc.ChangePassword(ctx, u.ID, sess, newPw, e.secret("a third good password"), "")
	wantCode(t, "change with the queue down", err, errs.Internal)
	fail = nil
	if err := e.svc.ChangePassword(ctx, u.ID, sess, newPw, e.secret("a fourth good password"), ""); err != nil {
		t.Errorf("the failed change was not rolled back: the password is no longer the second one: %v", err)
	}
}

// TestSignInEventOnlyFromANewBrowser: a sign-in from a browser without
// the account's remembered-device token is reported (the owner's
// "new sign-in" e-mail); one from a remembered browser is not, and neither
// is one that carries another account's token.
func TestSignInEventOnlyFromANewBrowser(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	e := newEnv(t, func(c *Config) {
		c.OnSecurityEvent = func(_ context.Context, _ pgx.Tx, userID, typ string, data map[string]any) error {
			mu.Lock()
			defer mu.Unlock()
			if typ == "security.sign_in" {
				got = append(got, userID)
			}
			return nil
		}
	})
	ctx := context.Background()
	u, pw, secret := e.user(Subscriber)
	other, otherPw, otherSecret := e.user(Subscriber)
	signIn := func(u User, pw, secret, device string) {
		t.Helper()
		res, err := e.svc.LoginFrom(ctx, u.Email, pw, "192.0.2.7", device)
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		e.secret(res.SessionID)
		if _, _, err := e.svc.CompleteLogin(ctx, res.SessionID, SecondFactor{Code: e.code(secret, 0)}, "192.0.2.7"); err != nil {
			t.Fatalf("second step: %v", err)
		}
		e.clock.Advance(31 * time.Second) // the next code
	}
	events := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}

	signIn(u, pw, secret, "") // a new browser
	device, err := e.svc.RememberDevice(ctx, u.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	e.secret(device)
	signIn(u, pw, secret, device) // the same browser again
	signIn(other, otherPw, otherSecret, device)
	if diff := cmp.Diff([]string{u.ID, other.ID}, events()); diff != "" {
		t.Errorf("sign-in events (-want +got):\n%s", diff)
	}
}
