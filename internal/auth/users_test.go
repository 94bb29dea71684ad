package auth

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/errs"
)

func TestSignup(t *testing.T) {
	t.Parallel()
	closed := newEnv(t)
	err := closed.svc.Signup(context.Background(), "new@example.com", closed.secret("password-1"), "")
	wantCode(t, "sign-up when closed", err, errs.Forbidden)

	notified := &recordingNotifier{}
	open := newEnv(t, func(c *Config) { c.SignupOpen = true; c.OnSecurityEvent = notified.record })
	ctx := context.Background()
	if err := open.svc.Signup(ctx, " New@Example.com ", open.secret("password-1"), "192.0.2.9"); err != nil {
		t.Fatal(err)
	}
	var u User
	u, err = scanUser(open.svc.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE lower(email) = 'new@example.com'`))
	if err != nil {
		t.Fatal(err)
	}
	if u.Role != Subscriber || u.Email != "New@Example.com" || u.TOTPEnabled {
		t.Errorf("signed-up user %+v", u)
	}
	// An address that has an account gets the very same answer; its owner
	// is told instead, and the attempt is audited.
	if err := open.svc.Signup(ctx, "new@example.COM", open.secret("password-2"), "192.0.2.9"); err != nil {
		t.Fatalf("sign-up with a registered address: %v, want the same answer as for a new one", err)
	}
	if diff := cmp.Diff([]string{"signup:" + u.ID}, notified.events()); diff != "" {
		t.Errorf("owner notifications (-want +got):\n%s", diff)
	}
	if got := open.auditActions(u.ID); got[len(got)-1] != "signup.existing_email" {
		t.Errorf("audit %v, want signup.existing_email last", got)
	}
	// Invalid input is still refused at its field: that reveals nothing.
	wantCode(t, "sign-up with a short password", open.svc.Signup(ctx, "x@example.com", "short", "192.0.2.10"), errs.Invalid)
}

// TestSignupThrottledPerAddress: an address gets SignupPerIP sign-ups an
// hour, new or existing e-mails alike; another address is not affected.
func TestSignupThrottledPerAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.SignupOpen = true; c.SignupPerIP = 3 })
	ctx := context.Background()
	pw := e.secret("password-123")
	for i := range 3 {
		if err := e.svc.Signup(ctx, fmt.Sprintf("s%d@example.com", i%2), pw, "198.51.100.1"); err != nil {
			t.Fatalf("sign-up %d: %v", i, err)
		}
	}
	err := e.svc.Signup(ctx, "s9@example.com", pw, "198.51.100.1")
	wantCode(t, "fourth sign-up within the hour", err, errs.RateLimited)
	if ra := errs.As(err).RetryAfter; ra <= 0 || ra > time.Hour {
		t.Errorf("Retry-After %v", ra)
	}
	if err := e.svc.Signup(ctx, "s10@example.com", pw, "198.51.100.2"); err != nil {
		t.Errorf("another address: %v", err)
	}
	e.clock.Advance(time.Hour + time.Second)
	if err := e.svc.Signup(ctx, "s11@example.com", pw, "198.51.100.1"); err != nil {
		t.Errorf("an hour later: %v", err)
	}
}

func TestCreateUserValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.svc.CreateUser(context.Background(), "", NewUser{Email: "no-at-sign", Role: "root", Password: "short"}, "")
	got := errs.As(err)
	if got == nil {
		t.Fatal("accepted an invalid user")
	}
	var fields []string
	for _, f := range got.Fields {
		fields = append(fields, f.Field)
	}
	if diff := cmp.Diff([]string{"email", "role", "password"}, fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}

func TestListUsersPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var want []string
	for range 5 {
		u, _, _ := e.user(Subscriber)
		want = append(want, u.ID)
		e.clock.Advance(time.Second)
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		users, next, err := e.svc.ListUsers(context.Background(), 2, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			got = append(got, u.ID)
		}
		if next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		cursor = next
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	_, _, err := e.svc.ListUsers(context.Background(), 2, "garbage")
	wantCode(t, "bad cursor", err, errs.Invalid)
	_, err = e.svc.User(context.Background(), "00000000-0000-0000-0000-000000000000")
	wantCode(t, "missing user", err, errs.NotFound)
	_, err = e.svc.User(context.Background(), "x")
	wantCode(t, "malformed id", err, errs.NotFound)
}
