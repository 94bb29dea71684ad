package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
)

func TestSessionIDsAreRandomAndStoredHashed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u, pw, secret := e.user(Subscriber)
	res := e.passwordStep(u.Email, pw, "")
	raw, err := base64.RawURLEncoding.DecodeString(res.SessionID)
	if err != nil || len(raw) != 32 {
		t.Fatalf("session id is %d bytes (%v), want 32 random bytes", len(raw), err)
	}
	full := e.signIn(u, pw, secret)
	rows, err := e.svc.pool.Query(context.Background(), `SELECT id_hash FROM sessions`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		n++
		for _, id := range []string{res.SessionID, full} {
			if bytes.Contains(h, []byte(id)) || bytes.Equal(h, raw) {
				t.Errorf("a session id is stored in clear")
			}
		}
	}
	if n != 2 {
		t.Errorf("%d sessions stored, want 2 (one password-only, one full)", n)
	}
}

func TestSessionTimeouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		steps []time.Duration // clock moves, each followed by a request
		alive bool
	}{
		{"fresh", nil, true},
		{"active every 29 minutes for 11 hours", repeat(29*time.Minute, 22), true},
		{"idle 31 minutes", []time.Duration{31 * time.Minute}, false},
		{"active but past 12 hours", repeat(29*time.Minute, 25), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			u, pw, secret := e.user(Subscriber)
			id := e.signIn(u, pw, secret)
			var err error
			for _, d := range tt.steps {
				e.clock.Advance(d)
				if _, err = e.svc.Authenticate(context.Background(), id); err != nil {
					break
				}
			}
			if (err == nil) != tt.alive {
				t.Fatalf("session alive = %v (%v), want %v", err == nil, err, tt.alive)
			}
			if !tt.alive {
				wantCode(t, "expired session", err, errs.Unauthenticated)
				e.clock.Advance(-time.Hour * 24) // even back in time the row is gone
				if _, err := e.svc.Authenticate(context.Background(), id); err == nil {
					t.Fatal("an expired session came back")
				}
			}
		})
	}
}

func TestConfiguredSessionTimeouts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.SessionIdle = 5 * time.Minute; c.SessionMaxAge = time.Hour })
	u, pw, secret := e.user(Subscriber)
	id := e.signIn(u, pw, secret)
	e.clock.Advance(6 * time.Minute)
	_, err := e.svc.Authenticate(context.Background(), id)
	wantCode(t, "idle past the configured 5 minutes", err, errs.Unauthenticated)
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

// TestSessionsEndServerSide covers the three ways a session ends before
// its time: logout, a password change (other sessions only) and an admin
// disabling the account.
func TestSessionsEndServerSide(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	admin, apw, asecret := e.user(Admin)
	adminSession := e.signIn(admin, apw, asecret)

	u, pw, secret := e.user(Subscriber)
	a := e.signIn(u, pw, secret)
	e.clock.Advance(30 * time.Second)
	b := e.signIn(u, pw, secret)

	if err := e.svc.Logout(ctx, a, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Authenticate(ctx, a); err == nil {
		t.Error("session works after logout")
	}
	e.clock.Advance(30 * time.Second)
	c := e.signIn(u, pw, secret)

	newPw := e.secret("a brand new password")
	err := e.svc.ChangePassword(ctx, u.ID, c, e.secret("wrong current"), newPw, "")
	wantCode(t, "change with a wrong current password", err, errs.Invalid)
	if err := e.svc.ChangePassword(ctx, u.ID, c, pw, newPw, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Authenticate(ctx, b); err == nil {
		t.Error("another session survived the password change")
	}
	if _, err := e.svc.Authenticate(ctx, c); err != nil {
		t.Errorf("the session that changed the password ended: %v", err)
	}
	if _, err := e.svc.Login(ctx, u.Email, pw, ""); err == nil {
		t.Error("the old password still works")
	}

	if _, err := e.svc.SetDisabled(ctx, admin.ID, u.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Authenticate(ctx, c); err == nil {
		t.Error("a session survived disabling the account")
	}
	_, err = e.svc.Login(ctx, u.Email, newPw, "")
	wantCode(t, "login when disabled", err, errs.Forbidden)
	_, err = e.svc.SetDisabled(ctx, admin.ID, admin.ID, true, "")
	wantCode(t, "disable oneself", err, errs.Conflict)
	if _, err := e.svc.Authenticate(ctx, adminSession); err != nil {
		t.Errorf("the admin's own session ended: %v", err)
	}
	if _, err := e.svc.SetDisabled(ctx, admin.ID, u.ID, false, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Login(ctx, u.Email, newPw, ""); err != nil {
		t.Errorf("login after enabling again: %v", err)
	}

	want := []string{"user.created", "2fa.enabled",
		"login.password", "login.success", "login.password", "login.success", "logout",
		"login.password", "login.success", "login.failure", "password.changed", "login.failure",
		"user.disabled", "login.refused", "user.enabled", "login.password"}
	if diff := cmp.Diff(want, e.auditActions(u.ID)); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	var actor, ip string
	if err := e.svc.pool.QueryRow(ctx, `SELECT actor_id::text, ip FROM audit_events WHERE action = 'user.disabled'`).Scan(&actor, &ip); err != nil {
		t.Fatal(err)
	}
	if actor != admin.ID {
		t.Errorf("user.disabled actor = %s, want the admin %s", actor, admin.ID)
	}
}

func TestSecondStepNeedsAPasswordOnlySession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u, pw, secret := e.user(Subscriber)
	full := e.signIn(u, pw, secret)
	e.clock.Advance(30 * time.Second)
	_, _, err := e.svc.CompleteLogin(context.Background(), full, SecondFactor{Code: e.code(secret, 0)}, "")
	wantCode(t, "second step on a full session", err, errs.Conflict)
	_, _, err = e.svc.CompleteLogin(context.Background(), e.secret("bm90IGEgc2Vzc2lvbg"), SecondFactor{Code: e.code(secret, 0)}, "")
	wantCode(t, "second step on no session", err, errs.Unauthenticated)
	_, _, err = e.svc.CompleteLogin(context.Background(), full, SecondFactor{}, "")
	if err == nil {
		t.Fatal("a second step without any code was accepted")
	}
}

// TestSessionTouchCommitsAsyncInItsOwnTransaction: the last-seen write
// turns synchronous_commit off for its own transaction only. Were the
// setting to outlive it, the connection's next transaction (on the main
// pool, any feature's write) would commit without waiting for the disk.
func TestSessionTouchCommitsAsyncInItsOwnTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var pool *pgxpool.Pool
	e := newEnv(t, func(c *Config) {
		// One connection: the touch and the checks below share it.
		var err error
		if pool, err = postgres.Open(ctx, pgtest.DB(t)+"&pool_max_conns=1"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		c.Pool = pool
	})
	u, pw, secret := e.user(Subscriber)
	id := e.signIn(u, pw, secret)
	// The test cluster turns synchronous_commit off for speed; the
	// session's own setting is what the touch must leave alone.
	if _, err := pool.Exec(ctx, `SET synchronous_commit = on`); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(touchEvery + time.Second)
	if _, err := e.svc.Authenticate(ctx, id); err != nil {
		t.Fatal(err)
	}
	var seen time.Time
	if err := pool.QueryRow(ctx, `SELECT last_seen_at FROM sessions WHERE id_hash = $1`, digest(id)).Scan(&seen); err != nil {
		t.Fatal(err)
	}
	if !seen.Equal(e.clock.Now().Truncate(time.Microsecond)) {
		t.Errorf("last_seen_at = %v, want the touch's %v", seen, e.clock.Now())
	}
	var setting string
	if err := pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&setting); err != nil {
		t.Fatal(err)
	}
	if setting != "on" {
		t.Errorf("synchronous_commit after the touch = %q, want on", setting)
	}
}
