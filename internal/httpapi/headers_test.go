package httpapi

import (
	"net/http"
	"testing"

	"github.com/ordertune/ordertune/internal/auth"
)

// TestResponseHeaders checks that API answers of every kind (JSON, CSV,
// problem) are nosniff and no-store, that the UI's files keep their own
// caching, and that HSTS is sent exactly when the public URL is https.
func TestResponseHeaders(t *testing.T) {
	t.Parallel()
	for _, publicURL := range []string{"", "https://ordertune.example"} {
		env := newAuthEnv(t, authEnvOptions{publicURL: publicURL, allFeatures: true})
		adm := env.signIn(env.newAccount(auth.Admin, true))
		for _, tc := range []struct {
			c         *client
			path      string
			wantCache string
		}{
			{adm, "/api/v1/me", "no-store"},
			{adm, "/api/v1/admin/confirmations?format=csv", "no-store"},
			{adm, "/api/v1/nope", "no-store"},
			{env.browser(), "/api/v1/me", "no-store"},
			{env.browser(), "/healthz", "no-store"},
			{env.browser(), "/assets/js/nope.js", "no-store"},
			{env.browser(), "/assets/js/main.js", "no-cache"},
			{env.browser(), "/", "no-cache"},
		} {
			r := tc.c.do(http.MethodGet, tc.path, nil)
			if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("%s GET %s (%d): X-Content-Type-Options %q, want nosniff", publicURL, tc.path, r.status, got)
			}
			if got := r.header.Get("Cache-Control"); got != tc.wantCache {
				t.Errorf("%s GET %s (%d): Cache-Control %q, want %q", publicURL, tc.path, r.status, got, tc.wantCache)
			}
			want := ""
			if publicURL != "" {
				want = hstsValue
			}
			if got := r.header.Get("Strict-Transport-Security"); got != want {
				t.Errorf("%s GET %s: Strict-Transport-Security %q, want %q", publicURL, tc.path, got, want)
			}
		}
	}
}
