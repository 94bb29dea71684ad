package auth

import (
	"context"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
)

// TestStepUp: signing in is not a step-up; the code that signed in cannot
// step up (replay guard); a later code can, for StepUpWindow; a recovery
// code can, once; a password-only session cannot.
func TestStepUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	u, pw, secret := e.user(Subscriber)
	signInCode := e.code(secret, 0)
	res := e.passwordStep(u.Email, pw, "")
	sid, _, err := e.svc.CompleteLogin(ctx, res.SessionID, SecondFactor{Code: signInCode}, "")
	if err != nil {
		t.Fatal(err)
	}
	e.secret(sid)
	principal := func() Principal {
		t.Helper()
		p, err := e.svc.Authenticate(ctx, sid)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := principal(); e.svc.SteppedUp(p) || !p.StepUpUntil.IsZero() {
		t.Fatalf("a fresh sign-in counts as a step-up: %+v", p)
	}
	wantCode(t, "sensitive action after signing in", e.svc.RequireStepUp(principal()), errs.StepUpRequired)

	_, err = e.svc.StepUp(ctx, sid, SecondFactor{Code: signInCode}, "")
	wantCode(t, "step-up with the sign-in code", err, errs.Invalid)
	if f := errs.As(err).Fields; len(f) != 1 || f[0].Field != "code" {
		t.Errorf("fields %+v, want the code field", f)
	}
	_, err = e.svc.StepUp(ctx, sid, SecondFactor{}, "")
	wantCode(t, "step-up without a code", err, errs.Invalid)

	e.clock.Advance(30 * time.Second)
	until, err := e.svc.StepUp(ctx, sid, SecondFactor{Code: e.code(secret, 0)}, "")
	if err != nil {
		t.Fatalf("step-up with the next code: %v", err)
	}
	if want := e.clock.Now().Add(StepUpWindow); !until.Equal(want) {
		t.Errorf("step-up until %v, want %v", until, want)
	}
	if p := principal(); !e.svc.SteppedUp(p) || !p.StepUpUntil.Equal(until) || e.svc.RequireStepUp(p) != nil {
		t.Errorf("after step-up: %+v", p)
	}
	e.clock.Advance(StepUpWindow - time.Second)
	if !e.svc.SteppedUp(principal()) {
		t.Error("step-up ended before its window")
	}
	e.clock.Advance(time.Second)
	if e.svc.SteppedUp(principal()) {
		t.Error("step-up outlived its window")
	}

	codes := e.recoveryCodes(u.ID)
	if _, err := e.svc.StepUp(ctx, sid, SecondFactor{RecoveryCode: codes[3]}, ""); err != nil {
		t.Fatalf("step-up with a recovery code: %v", err)
	}
	_, err = e.svc.StepUp(ctx, sid, SecondFactor{RecoveryCode: codes[3]}, "")
	wantCode(t, "the same recovery code again", err, errs.Invalid)

	// Another session of the same user is not stepped up by this one's.
	e.clock.Advance(30 * time.Second)
	other := e.signIn(u, pw, secret)
	if p, _ := e.svc.Authenticate(ctx, other); e.svc.SteppedUp(p) {
		t.Error("a step-up carried over to another session")
	}

	half := e.passwordStep(u.Email, pw, "")
	e.clock.Advance(30 * time.Second)
	_, err = e.svc.StepUp(ctx, half.SessionID, SecondFactor{Code: e.code(secret, 0)}, "")
	wantCode(t, "step-up on a password-only session", err, errs.MFARequired)

	acts := e.auditActions(u.ID)
	n := 0
	for _, a := range acts {
		if a == "step_up" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d step_up audit rows, want 2: %v", n, acts)
	}
}

// TestStepUpNeverForTokens: an API token is refused a sensitive action
// as forbidden, not asked to step up, whatever its principal says.
func TestStepUpNeverForTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := Principal{UserID: "x", TokenID: "t", Full: true, StepUpUntil: e.clock.Now().Add(time.Hour)}
	wantCode(t, "token on a sensitive action", e.svc.RequireStepUp(p), errs.Forbidden)
}
