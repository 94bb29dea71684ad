package auth

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/errs"
)

func TestSignup(t *testing.T) {
	t.Parallel()
	closed := newEnv(t)
	_, err := closed.svc.Signup(context.Background(), "new@example.com", closed.secret("password-1"), "")
	wantCode(t, "sign-up when closed", err, errs.Forbidden)

	open := newEnv(t, func(c *Config) { c.SignupOpen = true })
	u, err := open.svc.Signup(context.Background(), " New@Example.com ", open.secret("password-1"), "192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	if u.Role != Subscriber || u.Email != "New@Example.com" || u.TOTPEnabled {
		t.Errorf("signed-up user %+v", u)
	}
	_, err = open.svc.Signup(context.Background(), "new@example.COM", "password-2", "")
	wantCode(t, "same email in another case", err, errs.Conflict)
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
