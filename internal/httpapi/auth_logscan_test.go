package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/auth"
)

// TestLogsNeverHoldSecrets runs every secret-bearing path at trace level,
// including the failures that log (wrong codes, malformed bodies around a
// password, forged tokens, expired sessions, lockout), and scans the log.
// Every other auth test's log is scanned as well (authEnv.scanLogs); this
// one makes sure the failure paths are among them.
func TestLogsNeverHoldSecrets(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t)
	admin := env.newAccount(auth.Admin, true)
	a := env.newAccount(auth.Subscriber, false)
	c := env.browser()

	// Malformed and wrong bodies around a password.
	leaky := env.secret("Tr0ub4dor&3-leaky")
	c.do(http.MethodPost, "/api/v1/auth/login", `{"email":"`+a.user.Email+`","password":"`+leaky+`"`)
	c.do(http.MethodPost, "/api/v1/auth/login", `{"email":"`+a.user.Email+`","password":`+leaky+`}`)
	c.do(http.MethodPost, "/api/v1/auth/login", `{"email":"`+a.user.Email+`","password":"`+leaky+`","extra":1}`)
	c.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": leaky, "password": leaky})
	c.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": a.user.Email, "password": leaky})

	// Enrolment, with a wrong code first.
	c = env.passwordOnly(a)
	var setup struct {
		Secret string `json:"secret"`
	}
	c.do(http.MethodPost, "/api/v1/me/totp/setup", nil).json(t, &setup)
	c.do(http.MethodPost, "/api/v1/me/totp/enable", map[string]string{"code": env.secret("999999")})
	c.do(http.MethodPost, "/api/v1/me/totp/enable", `{"code":"`+env.secret("888888")+`"`)
	var en struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	c.do(http.MethodPost, "/api/v1/me/totp/enable", map[string]string{"code": env.code(setup.Secret)}).json(t, &en)
	if len(en.RecoveryCodes) != 10 {
		t.Fatal("enrolment failed")
	}

	// Second step: a wrong code, a wrong recovery code, a used one.
	env.clock.Advance(time.Minute)
	a.secret = setup.Secret
	d := env.passwordOnly(a)
	d.do(http.MethodPost, "/api/v1/auth/totp", map[string]string{"code": env.secret("111111")})
	d.do(http.MethodPost, "/api/v1/auth/totp", map[string]string{"recovery_code": env.secret("aaaa-bbbb-cccc-dddd")})
	d.do(http.MethodPost, "/api/v1/auth/totp", map[string]string{"recovery_code": en.RecoveryCodes[0]})
	e := env.passwordOnly(a)
	e.do(http.MethodPost, "/api/v1/auth/totp", map[string]string{"recovery_code": en.RecoveryCodes[0]})

	// Password change, wrong then right, with the new password logged nowhere.
	d.do(http.MethodPost, "/api/v1/me/password", map[string]string{"current_password": env.secret("wrong-current"), "new_password": env.secret("next-password-1")})
	d.do(http.MethodPost, "/api/v1/me/password", map[string]string{"current_password": a.password, "new_password": env.secret("short")})
	d.do(http.MethodPost, "/api/v1/me/password", map[string]string{"current_password": a.password, "new_password": env.secret("next-password-2")})

	// Tokens: created, used, forged, revoked.
	ad := env.signIn(admin).stepUp()
	var tok tokenView
	ad.do(http.MethodPost, "/api/v1/admin/tokens", map[string]any{"name": "feed", "scopes": []string{"signals:write"}}).json(t, &tok)
	env.program(tok.Token).do(http.MethodGet, "/api/v1/admin/users", nil)
	env.program("ot_"+strings.Repeat("x", 43)).do(http.MethodGet, "/api/v1/me", nil)
	env.program(env.secret("not-even-prefixed-secret")).do(http.MethodGet, "/api/v1/me", nil)
	ad.do(http.MethodDelete, "/api/v1/admin/tokens/"+tok.ID, nil)
	env.program(tok.Token).do(http.MethodGet, "/api/v1/admin/users", nil)

	// Sessions: forged, expired, logged out, ended by a disable.
	forged := env.browser()
	forged.session = env.secret("forged-session-id-value")
	forged.do(http.MethodGet, "/api/v1/me", nil)
	env.clock.Advance(31 * time.Minute)
	d.do(http.MethodGet, "/api/v1/me", nil)
	ad.do(http.MethodGet, "/api/v1/me", nil)
	ad = env.signIn(admin).stepUp()
	ad.do(http.MethodPatch, "/api/v1/admin/users/"+a.user.ID, map[string]bool{"disabled": true})
	ad.do(http.MethodPost, "/api/v1/auth/logout", nil)

	// Throttling and the lockout log a warning; its line must be clean too.
	for i := range 6 {
		env.browser().do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": admin.user.Email, "password": env.secret("guess-" + strings.Repeat("g", i+3))})
	}
	if !strings.Contains(env.logs.String(), `"status":429`) {
		t.Error("the throttled request is missing from the log")
	}
}
