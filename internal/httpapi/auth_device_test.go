package httpapi

import (
	"crypto/sha256"
	"net/http"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/auth"
)

// TestRememberedDeviceCookie: a full sign-in sets a long-lived
// remembered-device cookie (random, __Host-, Secure, HttpOnly,
// SameSite=Strict, stored only hashed); with it the owner signs in
// through a lock-out that keeps everyone else out.
func TestRememberedDeviceCookie(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t, authEnvOptions{publicURL: "https://ordertune.example"})
	a := env.newAccount(auth.Subscriber, true)
	c := env.passwordOnly(a)
	r := c.do(http.MethodPost, "/api/v1/auth/totp", map[string]string{"code": env.code(a.secret)})
	var dev *http.Cookie
	for _, ck := range (&http.Response{Header: r.header}).Cookies() {
		if ck.Name == "__Host-ordertune_device" {
			dev = ck
		}
	}
	if r.status != 200 || dev == nil {
		t.Fatalf("2FA: %d, device cookie %v", r.status, dev)
	}
	env.secret(dev.Value)
	if !dev.Secure || !dev.HttpOnly || dev.SameSite != http.SameSiteStrictMode || dev.Path != "/" || dev.Domain != "" ||
		dev.MaxAge < 90*24*3600 || len(dev.Value) < 43 {
		t.Errorf("device cookie %+v: want Secure, HttpOnly, SameSite=Strict, Path=/, no Domain, long-lived, 256 random bits", dev)
	}
	var stored int
	h := sha256.Sum256([]byte(dev.Value))
	if err := env.srv.pool.QueryRow(t.Context(), `SELECT count(*) FROM remembered_devices WHERE user_id = $1 AND id_hash = $2`, a.user.ID, h[:]).Scan(&stored); err != nil || stored != 1 {
		t.Fatalf("remembered device rows with the cookie's hash: %d (%v)", stored, err)
	}

	// Someone locks the account.
	if _, err := env.srv.pool.Exec(t.Context(), `UPDATE users SET locked_at = now() WHERE id = $1`, a.user.ID); err != nil {
		t.Fatal(err)
	}
	login := func(withDevice bool) response {
		b := env.browser()
		if withDevice {
			b.header.Set("Cookie", dev.Name+"="+dev.Value)
		}
		return b.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": a.user.Email, "password": a.password})
	}
	if r := login(false); r.status != http.StatusForbidden {
		t.Errorf("locked, without the device: %d %s, want 403", r.status, r.body)
	}
	env.clock.Advance(30 * time.Second)
	b := env.browser()
	b.header.Set("Cookie", dev.Name+"="+dev.Value)
	if r := b.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": a.user.Email, "password": a.password}); r.status != 200 {
		t.Fatalf("locked, from the remembered device: %d %s", r.status, r.body)
	}
	if r := b.do(http.MethodPost, "/api/v1/auth/totp", map[string]string{"code": env.code(a.secret)}); r.status != 200 {
		t.Fatalf("second step from the remembered device: %d %s", r.status, r.body)
	}
	if r := b.do(http.MethodGet, "/api/v1/me", nil); r.status != 200 {
		t.Errorf("signed in from the remembered device: %d %s", r.status, r.body)
	}
}
