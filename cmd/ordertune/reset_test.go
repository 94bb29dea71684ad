package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/auth"
)

// raw sends one JSON request and returns the status, the body and how
// long the answer took.
func (c *apiClient) raw(t *testing.T, method, path string, body any) (int, string, time.Duration) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, c.base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out), time.Since(start)
}

var resetLinkRE = regexp.MustCompile(`(http://[^\s]+/reset-password)#token=([A-Za-z0-9_%-]+)`)

// TestPasswordResetByEmail is "Forgot password?" through the API and a
// real SMTP server: a registered and an unknown address get the same
// answer after the same time, only the registered one gets an e-mail;
// its link sets a new password once, ends the sessions, and signing in
// still needs TOTP; the address's requests are limited; all audited.
func TestPasswordResetByEmail(t *testing.T) {
	e := startMailEnv(t, nil)
	u := e.user(t, "reset-me@example.com", "the first password")
	sess := signIn(t, e.base, u)
	anon := e.anonymous()

	st1, body1, took1 := anon.raw(t, "POST", "/api/v1/auth/password-reset", map[string]string{"email": "Reset-Me@example.com"})
	st2, body2, took2 := anon.raw(t, "POST", "/api/v1/auth/password-reset", map[string]string{"email": "nobody@example.com"})
	if st1 != 202 || st2 != 202 || body1 != body2 {
		t.Fatalf("answers differ: registered %d %s, unknown %d %s", st1, body1, st2, body2)
	}
	for _, took := range []time.Duration{took1, took2} {
		if took < auth.DefaultResetAnswerTime {
			t.Errorf("a reset request answered after %v, before the %v both wait", took, auth.DefaultResetAnswerTime)
		}
	}
	if d := took1 - took2; d > 150*time.Millisecond || d < -150*time.Millisecond {
		t.Errorf("the registered address took %v, the unknown one %v", took1, took2)
	}

	msgs := e.mailsWith(t, "Reset your password", 1)
	time.Sleep(300 * time.Millisecond) // room for a wrong second e-mail
	msgs = e.mailsWith(t, "Reset your password", 1)
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != u.Email {
		t.Fatalf("reset e-mails: %d, to %v; want one, to %s", len(msgs), msgs[0].To, u.Email)
	}
	m := resetLinkRE.FindStringSubmatch(msgs[0].Text())
	if m == nil || m[1] != e.base+"/reset-password" {
		t.Fatalf("no reset link to %s/reset-password in:\n%s", e.base, msgs[0].Text())
	}
	token := m[2]
	if strings.Contains(e.logs.String(), token) {
		t.Error("the server log holds the reset token")
	}
	var n int
	if err := e.pool.QueryRow(t.Context(), `SELECT count(*) FROM river_job WHERE args::text LIKE '%' || $1 || '%'`, token).Scan(&n); err != nil || n != 0 {
		t.Errorf("river's table holds the token in clear (%d rows, %v)", n, err)
	}

	st, body, _ := anon.raw(t, "POST", "/api/v1/auth/password-reset/complete", map[string]string{"token": token, "new_password": "short"})
	if st != 422 || !strings.Contains(body, `"new_password"`) {
		t.Errorf("a too short password: %d %s", st, body)
	}
	const next = "the second password"
	if st, body, _ := anon.raw(t, "POST", "/api/v1/auth/password-reset/complete", map[string]string{"token": token, "new_password": next}); st != 204 {
		t.Fatalf("reset with the link: %d %s", st, body)
	}
	if st, body, _ := anon.raw(t, "POST", "/api/v1/auth/password-reset/complete", map[string]string{"token": token, "new_password": "the third password"}); st != 422 || !strings.Contains(body, `"token"`) {
		t.Errorf("the link a second time: %d %s, want 422 at token", st, body)
	}
	sess.do(t, "GET", "/api/v1/me", nil, 401, nil) // the session from before ended
	if st, _, _ := e.anonymous().raw(t, "POST", "/api/v1/auth/login", map[string]string{"email": u.Email, "password": u.Password}); st != 401 {
		t.Errorf("the old password: %d, want 401", st)
	}
	fresh := e.anonymous()
	var login struct{ MFA string }
	fresh.do(t, "POST", "/api/v1/auth/login", map[string]string{"email": u.Email, "password": next}, 200, &login)
	if login.MFA != "required" {
		t.Errorf("after the reset, sign-in says mfa %q, want required", login.MFA)
	}
	if st, body, _ := fresh.raw(t, "GET", "/api/v1/signals", nil); st != 403 || !strings.Contains(body, "mfa_required") {
		t.Errorf("the new password alone: %d %s, want 403 mfa_required", st, body)
	}
	e.mailsWith(t, "Your password was changed", 1)

	// Three requests an hour per address, known or not; the fourth is
	// refused alike.
	for _, email := range []string{u.Email, "nobody@example.com"} {
		for range 2 {
			if st, body, _ := anon.raw(t, "POST", "/api/v1/auth/password-reset", map[string]string{"email": email}); st != 202 {
				t.Fatalf("request for %s: %d %s", email, st, body)
			}
		}
		if st, body, _ := anon.raw(t, "POST", "/api/v1/auth/password-reset", map[string]string{"email": email}); st != 429 || !strings.Contains(body, "rate_limited") {
			t.Errorf("a fourth request for %s: %d %s, want 429", email, st, body)
		}
	}

	rows, err := e.pool.Query(t.Context(), `SELECT a.action FROM audit_events a JOIN users u ON u.id = a.user_id
		WHERE u.email = $1 AND a.action IN ('password_reset.requested', 'password.reset') ORDER BY a.id`, u.Email)
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for rows.Next() {
		var a string
		rows.Scan(&a)
		acts = append(acts, a)
	}
	if want := "password_reset.requested password.reset password_reset.requested password_reset.requested"; strings.Join(acts, " ") != want {
		t.Errorf("audit: %v, want %s", acts, want)
	}
}
