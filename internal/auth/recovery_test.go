package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
)

func TestRecoveryCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	u, pw, secret := e.user(Subscriber)
	e.signIn(u, pw, secret)
	codes, err := e.svc.RegenerateRecoveryCodes(ctx, u.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range codes {
		e.secret(c)
		if len(c) != 19 || seen[c] {
			t.Fatalf("recovery code %q malformed or repeated", c)
		}
		seen[c] = true
	}
	if len(codes) != 10 {
		t.Fatalf("%d codes, want 10", len(codes))
	}
	var stored int
	if err := e.svc.pool.QueryRow(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND code_hash = $2`,
		u.ID, []byte(codes[0])).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("a recovery code is stored in clear (%v)", err)
	}

	use := func(code string) error {
		res, err := e.svc.Login(ctx, u.Email, pw, "")
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = e.svc.CompleteLogin(ctx, e.secret(res.SessionID), SecondFactor{RecoveryCode: code}, "")
		return err
	}
	if err := use(strings.ToUpper(strings.ReplaceAll(codes[0], "-", " "))); err != nil {
		t.Fatalf("a recovery code typed in capitals with spaces: %v", err)
	}
	wantCode(t, "the same code again", use(codes[0]), errs.Unauthenticated)
	if err := use(codes[1]); err != nil {
		t.Fatalf("a second code: %v", err)
	}

	fresh, err := e.svc.RegenerateRecoveryCodes(ctx, u.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range fresh {
		e.secret(c)
	}
	wantCode(t, "an old code after regeneration", use(codes[2]), errs.Unauthenticated)
	e.clock.Advance(time.Minute)
	if err := use(fresh[9]); err != nil {
		t.Fatalf("a new code: %v", err)
	}
	var detail string
	if err := e.svc.pool.QueryRow(ctx, `SELECT details->>'remaining' FROM audit_events
		WHERE user_id = $1 AND action = 'recovery_code.used' ORDER BY id DESC LIMIT 1`, u.ID).Scan(&detail); err != nil {
		t.Fatal(err)
	}
	if detail != "9" {
		t.Errorf("remaining after one use of a new set = %s, want 9", detail)
	}
}

func TestRecoveryCodesNeed2FA(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u, err := e.svc.CreateUser(context.Background(), "", NewUser{Email: "no2fa@example.com", Role: Subscriber, Password: e.secret("password-123")}, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.RegenerateRecoveryCodes(context.Background(), u.ID, "")
	wantCode(t, "regenerate without 2FA", err, errs.Conflict)
}
