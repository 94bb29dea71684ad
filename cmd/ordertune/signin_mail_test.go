package main

import (
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/auth"
)

// signInAgain signs c in once more as u, with the code of a TOTP step
// after the last one used (the replay guard refuses a step twice).
func (c *apiClient) signInAgain(t *testing.T, u demoUser) {
	t.Helper()
	if next := time.Unix((c.step+1)*30, 0); time.Now().Before(next) {
		time.Sleep(time.Until(next) + 50*time.Millisecond)
	}
	c.do(t, "POST", "/api/v1/auth/login", map[string]string{"email": u.Email, "password": u.Password}, 200, nil)
	now := time.Now()
	code, err := auth.TOTPCode(u.TOTPSecret, now)
	if err != nil {
		t.Fatal(err)
	}
	c.do(t, "POST", "/api/v1/auth/totp", map[string]string{"code": code}, 200, nil)
	c.step = now.Unix() / 30
}

// TestSignInMailOnlyFromANewBrowser: the first sign-in from a browser
// e-mails "New sign-in"; signing in again from it (it keeps the
// remembered-device cookie) does not; another browser does.
func TestSignInMailOnlyFromANewBrowser(t *testing.T) {
	e := startMailEnv(t, nil)
	u := e.user(t, "signs-in@example.com", "a sign-in password")
	first := signIn(t, e.base, u)
	e.mailsWith(t, "New sign-in", 1)

	first.signInAgain(t, u) // the same browser
	other := &apiClient{base: e.base, c: e.anonymous().c, step: first.step}
	other.signInAgain(t, u) // another browser
	e.mailsWith(t, "New sign-in", 2)
	time.Sleep(500 * time.Millisecond) // room for a third, wrong one
	msgs := e.mailsWith(t, "New sign-in", 2)
	if len(msgs) != 2 {
		t.Errorf("%d new sign-in e-mails, want 2 (the first browser once, the second once)", len(msgs))
	}
	for _, m := range msgs {
		if len(m.To) != 1 || m.To[0] != u.Email {
			t.Errorf("sign-in e-mail to %v", m.To)
		}
	}
}
