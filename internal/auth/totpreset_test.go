package auth

import (
	"context"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
)

// TestResetTOTP: after an admin's reset the user's sessions are gone, the
// old code and recovery codes no longer sign in, and the password leads
// to enrolment again; the reset is audited with the admin as actor.
func TestResetTOTP(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin, _, _ := e.user(Admin)
	u, pw, secret := e.user(Subscriber)
	sess := e.signIn(u, pw, secret)
	e.clock.Advance(30 * time.Second)
	codes, err := e.svc.RegenerateRecoveryCodes(ctx, u.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range codes {
		e.secret(c)
	}

	got, err := e.svc.ResetTOTP(ctx, admin.ID, u.ID, "198.51.100.7")
	if err != nil {
		t.Fatal(err)
	}
	if got.TOTPEnabled {
		t.Error("2FA still on after the reset")
	}
	if _, err := e.svc.Authenticate(ctx, sess); errs.CodeOf(err) != errs.Unauthenticated {
		t.Errorf("the user's session after the reset: %v, want it ended", err)
	}
	res := e.passwordStep(u.Email, pw, "192.0.2.1")
	if res.MFA != MFAEnroll {
		t.Errorf("sign-in after the reset asks %q, want enrolment", res.MFA)
	}
	e.clock.Advance(30 * time.Second)
	if _, _, err := e.svc.CompleteLogin(ctx, res.SessionID, SecondFactor{Code: e.code(secret, 0)}, ""); err == nil {
		t.Error("the old authenticator still signs in")
	}
	if _, _, err := e.svc.CompleteLogin(ctx, res.SessionID, SecondFactor{RecoveryCode: codes[0]}, ""); err == nil {
		t.Error("an old recovery code still signs in")
	}

	var actor, ip string
	if err := e.svc.pool.QueryRow(ctx, `SELECT actor_id::text, ip FROM audit_events WHERE action = 'totp.reset' AND user_id = $1`, u.ID).Scan(&actor, &ip); err != nil {
		t.Fatalf("audit row: %v", err)
	}
	if actor != admin.ID || ip != "198.51.100.7" {
		t.Errorf("audit actor, ip = %s, %s; want %s, 198.51.100.7", actor, ip, admin.ID)
	}

	_, err = e.svc.ResetTOTP(ctx, admin.ID, admin.ID, "")
	wantCode(t, "resetting one's own", err, errs.Conflict)
	_, err = e.svc.ResetTOTP(ctx, admin.ID, "00000000-0000-4000-8000-000000000000", "")
	wantCode(t, "an unknown user", err, errs.NotFound)
	_, err = e.svc.ResetTOTP(ctx, admin.ID, "not-an-id", "")
	wantCode(t, "a malformed id", err, errs.NotFound)
}
