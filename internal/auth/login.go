package auth

import (
	"context"
	"errors"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
)

// The second step a password-only session must take.
const (
	MFARequired = "required" // enter a TOTP or recovery code
	MFAEnroll   = "enroll"   // set up TOTP first
)

// LoginResult is a successful password step: a session that can only take
// the second step.
type LoginResult struct {
	SessionID string // for the cookie only; never log it
	MFA       string // MFARequired or MFAEnroll
	User      User
}

func errBadCredentials() error { return errs.E(errs.Unauthenticated, "wrong email or password") }

// Login checks a password and starts a password-only session. An unknown
// email is hashed against a dummy hash, so it costs what a wrong password
// costs and gets the same answer.
func (s *Service) Login(ctx context.Context, email, password, ip string) (LoginResult, error) {
	return s.LoginFrom(ctx, email, password, ip, "")
}

// LoginFrom is Login from a browser that may hold a remembered-device
// token (RememberDevice). When the token is the account's, the account's
// failure back-off and lock-out do not apply: others guessing at the
// e-mail cannot keep its owner out. The device's own failures are
// throttled instead, and the address's limit applies as always.
func (s *Service) LoginFrom(ctx context.Context, email, password, ip, device string) (LoginResult, error) {
	email = normalizeEmail(email)
	if email == "" || password == "" || utf8.RuneCountInString(password) > MaxPasswordLen || len(email) > 254 {
		return LoginResult{}, errBadCredentials()
	}
	devUser, err := s.deviceOwner(ctx, device, email)
	if err != nil {
		return LoginResult{}, err
	}
	trusted := devUser != ""
	key := acctKey(email)
	if trusted {
		key = devKey(devUser)
	}
	end, err := s.beginAttemptKey(key)
	if err != nil {
		return LoginResult{}, err
	}
	defer end()
	if err := s.checkThrottleKey(ctx, key, ip); err != nil {
		return LoginResult{}, err
	}

	var hash string
	u, err := scanUserHash(s.pool.QueryRow(ctx, `SELECT `+userColumns+`, password_hash FROM users WHERE lower(email) = $1`, email), &hash)
	known := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return LoginResult{}, internal("login", err)
	}
	if !known {
		if hash, err = s.dummyHash(ctx); err != nil {
			return LoginResult{}, internal("login", err)
		}
	}
	ok, err := s.verifyPassword(ctx, hash, password)
	if err != nil {
		return LoginResult{}, internal("login", err)
	}
	if !known || !ok {
		reason := "wrong password"
		if !known {
			reason = "unknown email"
		}
		if err := s.recordFailure(ctx, failure{email: email, userID: u.ID, ip: ip, stage: "password", reason: reason, device: trusted}); err != nil {
			return LoginResult{}, err
		}
		return LoginResult{}, errBadCredentials()
	}
	if u.Disabled || (u.Locked && !trusted) {
		reason, refusal := "disabled", errs.E(errs.Forbidden, "this account is disabled")
		if !u.Disabled {
			reason, refusal = "locked", errs.E(errs.Forbidden, "this account is locked after too many failed attempts; an admin can unlock it")
		}
		err := s.tx(ctx, func(tx pgx.Tx) error {
			return audit.Record(ctx, tx, audit.Event{At: s.now(), UserID: u.ID, IP: ip, Action: "login.refused",
				Details: map[string]any{"reason": reason}})
		})
		if err != nil {
			return LoginResult{}, internal("login", err)
		}
		return LoginResult{}, refusal
	}

	res := LoginResult{User: u, MFA: MFARequired}
	if !u.TOTPEnabled {
		res.MFA = MFAEnroll
	}
	now := s.now()
	err = s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		if res.SessionID, err = s.newSessionFrom(ctx, tx, u.ID, false, trusted, now, ip); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Event{At: now, UserID: u.ID, ActorID: u.ID, IP: ip, Action: "login.password",
			Details: map[string]any{"mfa": res.MFA, "remembered_device": trusted}})
	})
	if err != nil {
		return LoginResult{}, internal("login", err)
	}
	return res, nil
}

func scanUserHash(row pgx.Row, hash *string) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.Role, &u.TOTPEnabled, &u.Disabled, &u.Locked, &u.CreatedAt, hash)
	u.CreatedAt = u.CreatedAt.UTC()
	return u, err
}

// SecondFactor is a TOTP code or, instead, one of the recovery codes.
type SecondFactor struct {
	Code         string
	RecoveryCode string
}

// CompleteLogin takes the second step on a password-only session: a valid
// TOTP code (used once only) or an unused recovery code makes it fully
// authenticated under a new id, which it returns.
func (s *Service) CompleteLogin(ctx context.Context, sessionID string, f SecondFactor, ip string) (string, User, error) {
	r, err := s.loadSession(ctx, sessionID)
	if err != nil {
		return "", User{}, err
	}
	if r.full {
		return "", User{}, errs.E(errs.Conflict, "this session is already fully signed in")
	}
	if !r.totpEnabled {
		return "", User{}, errs.E(errs.MFARequired, "set up two-factor authentication first")
	}
	if err := f.check(); err != nil {
		return "", User{}, err
	}
	key := acctKey(r.email)
	if r.deviceTrusted {
		key = devKey(r.userID)
	}
	end, err := s.beginAttemptKey(key)
	if err != nil {
		return "", User{}, err
	}
	defer end()
	if err := s.checkThrottleKey(ctx, key, ip); err != nil {
		return "", User{}, err
	}
	cf, err := s.prepareFactor(ctx, r.userID, f)
	if err != nil {
		return "", User{}, internal("complete login", err)
	}

	now := s.now()
	var newID string
	var u User
	accepted := false
	err = s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		if accepted, err = s.useFactor(ctx, tx, r.userID, cf, now); err != nil || !accepted {
			return err
		}
		if newID, err = s.rotateSession(ctx, tx, sessionID, r, ip); err != nil {
			return err
		}
		if err := resetAccount(ctx, tx, r.email); err != nil {
			return err
		}
		if r.deviceTrusted {
			if err := unlockFromDevice(ctx, tx, r.userID, ip, now); err != nil {
				return err
			}
		}
		if cf.recovery {
			var left int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL`, r.userID).Scan(&left); err != nil {
				return err
			}
			if err := audit.Record(ctx, tx, audit.Event{At: now, UserID: r.userID, ActorID: r.userID, IP: ip,
				Action: "recovery_code.used", Details: map[string]any{"remaining": left}}); err != nil {
				return err
			}
		}
		if err := audit.Record(ctx, tx, audit.Event{At: now, UserID: r.userID, ActorID: r.userID, IP: ip,
			Action: "login.success", Details: map[string]any{"second_factor": cf.stage()}}); err != nil {
			return err
		}
		// Only a browser the account has not signed in from before is
		// news to its owner: a remembered device's sign-ins are routine,
		// and an e-mail for each would teach people to ignore them.
		if !r.deviceTrusted {
			if err := s.securityEvent(ctx, tx, r.userID, "security.sign_in", map[string]any{"ip": ip, "second_factor": cf.stage(), "new_device": true}); err != nil {
				return err
			}
		}
		u, err = scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, r.userID))
		return err
	})
	if err != nil {
		return "", User{}, internal("complete login", err)
	}
	if !accepted {
		if err := s.recordFailure(ctx, failure{email: r.email, userID: r.userID, ip: ip, stage: cf.stage(), reason: "wrong or used code", device: r.deviceTrusted}); err != nil {
			return "", User{}, err
		}
		return "", User{}, errs.E(errs.Unauthenticated, "the code is wrong or was already used")
	}
	return newID, u, nil
}
