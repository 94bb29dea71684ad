package auth

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
)

// StepUpWindow is how long one step-up lets a session do sensitive
// actions.
const StepUpWindow = 5 * time.Minute

// StepUp checks a fresh second factor on a fully signed-in session and
// lets that session do sensitive actions until the time it returns.
// Signing in is not a step-up (a stolen session cookie must not be
// enough), and the TOTP replay guard applies: the code that signed the
// session in cannot step it up. A wrong code counts as a failed attempt
// against the account, like one at sign-in.
func (s *Service) StepUp(ctx context.Context, sessionID string, f SecondFactor, ip string) (time.Time, error) {
	r, err := s.loadSession(ctx, sessionID)
	if err != nil {
		return time.Time{}, err
	}
	if !r.full {
		return time.Time{}, errs.E(errs.MFARequired, "finish signing in first")
	}
	if err := f.check(); err != nil {
		return time.Time{}, err
	}
	end, err := s.beginAttempt(r.email)
	if err != nil {
		return time.Time{}, err
	}
	defer end()
	if err := s.checkThrottle(ctx, r.email, ip); err != nil {
		return time.Time{}, err
	}
	pf, err := s.prepareFactor(ctx, r.userID, f)
	if err != nil {
		return time.Time{}, internal("step up", err)
	}
	now := s.now()
	until := now.Add(StepUpWindow)
	accepted := false
	err = s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		if accepted, err = s.useFactor(ctx, tx, r.userID, pf, now); err != nil || !accepted {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE sessions SET step_up_until = $2 WHERE id_hash = $1 AND user_id = $3`,
			digest(sessionID), until, r.userID); err != nil {
			return err
		}
		if err := resetAccount(ctx, tx, r.email); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Event{At: now, UserID: r.userID, ActorID: r.userID, IP: ip,
			Action: "step_up", Details: map[string]any{"second_factor": pf.stage()}})
	})
	if err != nil {
		return time.Time{}, internal("step up", err)
	}
	if !accepted {
		if err := s.recordFailure(ctx, failure{email: r.email, userID: r.userID, ip: ip, stage: "step_up_" + pf.stage(), reason: "wrong or used code"}); err != nil {
			return time.Time{}, err
		}
		field := "code"
		if pf.recovery {
			field = "recovery_code"
		}
		return time.Time{}, errs.Fields("the code is wrong or was already used",
			errs.FieldError{Field: field, Message: "is wrong or was already used; wait for the next code"})
	}
	return until, nil
}

// SteppedUp reports whether p may do a sensitive action now: a session
// whose step-up has not run out. API tokens never may.
func (s *Service) SteppedUp(p Principal) bool {
	return !p.ViaToken() && p.StepUpUntil.After(s.now())
}

// RequireStepUp returns nil when p may do a sensitive action now, and
// otherwise the refusal: step_up_required for a session, forbidden for an
// API token, which can never step up.
func (s *Service) RequireStepUp(p Principal) error {
	if p.ViaToken() {
		return errs.E(errs.Forbidden, "API tokens cannot do this; use the web UI")
	}
	if !s.SteppedUp(p) {
		return errs.E(errs.StepUpRequired, "this action needs a fresh two-factor code: confirm it is you, then try again")
	}
	return nil
}
