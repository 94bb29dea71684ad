package auth

import (
	"context"
	"testing"
	"time"
)

func TestSweep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	u, pw, secret := e.user(Subscriber)
	e.signIn(u, pw, secret) // idle from here on
	if _, err := e.svc.Login(ctx, "ghost@example.com", "wrong-password", "192.0.2.77"); err == nil {
		t.Fatal("ghost signed in")
	}
	e.clock.Advance(2 * time.Hour)
	fresh := e.signIn(u, pw, secret)
	n, err := e.svc.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 { // the idle session and the address's decayed count
		t.Errorf("swept %d rows, want 2", n)
	}
	var sessions, throttles int
	e.svc.pool.QueryRow(ctx, `SELECT count(*) FROM sessions`).Scan(&sessions)
	e.svc.pool.QueryRow(ctx, `SELECT count(*) FROM auth_throttle`).Scan(&throttles)
	if sessions != 1 || throttles != 1 {
		t.Errorf("%d sessions and %d throttle rows left, want 1 and 1 (the fresh session, the account count)", sessions, throttles)
	}
	if _, err := e.svc.Authenticate(ctx, fresh); err != nil {
		t.Errorf("the fresh session was swept: %v", err)
	}
}
