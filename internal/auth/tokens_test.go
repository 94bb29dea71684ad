package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/errs"
)

func TestAPITokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	admin, _, _ := e.user(Admin)
	other, _, _ := e.user(Admin)

	_, _, err := e.svc.CreateToken(ctx, admin.ID, "feed", []string{"orders:delete"}, "")
	wantCode(t, "unknown scope", err, errs.Invalid)
	_, _, err = e.svc.CreateToken(ctx, admin.ID, "", nil, "")
	if diff := cmp.Diff([]errs.FieldError{{Field: "name"}, {Field: "scopes"}}, errs.As(err).Fields,
		cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Message" }, cmp.Ignore())); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}

	tok, raw, err := e.svc.CreateToken(ctx, admin.ID, "signal feed", []string{ScopeSignalsWrite}, "192.0.2.4")
	if err != nil {
		t.Fatal(err)
	}
	e.secret(raw)
	if !strings.HasPrefix(raw, "ot_") || len(raw) < 40 {
		t.Fatalf("token %d chars, want ot_ and 256 random bits", len(raw))
	}
	var inClear int
	e.svc.pool.QueryRow(ctx, `SELECT count(*) FROM api_tokens WHERE token_hash = $1`, []byte(raw)).Scan(&inClear)
	if inClear != 0 {
		t.Fatal("the token is stored in clear")
	}

	e.clock.Advance(time.Minute)
	p, err := e.svc.AuthenticateToken(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	want := Principal{UserID: admin.ID, Email: admin.Email, Scopes: []string{ScopeSignalsWrite}, TokenID: tok.ID, Full: true}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}
	if !p.ViaToken() || !p.HasScope(ScopeSignalsWrite) || p.HasScope("admin") {
		t.Errorf("ViaToken/HasScope wrong for %+v", p)
	}
	list, err := e.svc.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].LastUsedAt == nil || !list[0].LastUsedAt.Equal(e.clock.Now()) {
		t.Fatalf("last use not recorded: %+v", list)
	}

	for _, bad := range []string{"", "ot_", "ot_" + strings.Repeat("A", 43), "Bearer " + raw, raw + "x"} {
		_, err := e.svc.AuthenticateToken(ctx, bad)
		wantCode(t, "bad token", err, errs.Unauthenticated)
	}

	if err := e.svc.RevokeToken(ctx, other.ID, "not-a-uuid", ""); errs.CodeOf(err) != errs.NotFound {
		t.Errorf("revoke a malformed id: %v", err)
	}
	if err := e.svc.RevokeToken(ctx, other.ID, tok.ID, ""); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.AuthenticateToken(ctx, raw)
	wantCode(t, "revoked token", err, errs.Unauthenticated)
	if err := e.svc.RevokeToken(ctx, other.ID, tok.ID, ""); err != nil {
		t.Errorf("revoking twice: %v", err)
	}

	// A token stops with its admin.
	_, raw2, err := e.svc.CreateToken(ctx, admin.ID, "second", []string{ScopeSignalsWrite}, "")
	if err != nil {
		t.Fatal(err)
	}
	e.secret(raw2)
	if _, err := e.svc.SetDisabled(ctx, other.ID, admin.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.AuthenticateToken(ctx, raw2)
	wantCode(t, "token of a disabled admin", err, errs.Unauthenticated)

	if diff := cmp.Diff([]string{"user.created", "2fa.enabled", "token.created", "token.created", "user.disabled"}, e.auditActions(admin.ID)); diff != "" {
		t.Errorf("admin audit (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"user.created", "2fa.enabled", "token.revoked"}, e.auditActions(other.ID)); diff != "" {
		t.Errorf("revoker audit (-want +got):\n%s", diff)
	}
}
