package auth

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
)

// ResetLinkTTL is how long a password reset link works.
const ResetLinkTTL = 30 * time.Minute

// resetTokenBytes is the size of a reset token: 256 random bits.
const resetTokenBytes = 32

// Reset requests allowed per hour, whether or not the address has an
// account: a limit that applied only to registered addresses would tell
// which ones are.
const (
	ResetsPerAddress = 3
	ResetsPerIP      = 10
)

// DefaultResetAnswerTime is the least time RequestPasswordReset takes, so
// that an address with an account (a link made and queued) and one without
// answer after the same time.
const DefaultResetAnswerTime = 400 * time.Millisecond

func resetAddrKey(email string) string { return "reset:acct:" + normalizeEmail(email) }
func resetIPKey(ip string) string      { return "reset:ip:" + ip }

// RequestPasswordReset e-mails a single-use link that sets a new password
// (through OnPasswordReset, in the transaction that stores the link) when
// email names an enabled account. It answers the same, after the same time
// (ResetAnswerTime), whether or not it does: only the owner of the mailbox
// learns the answer. Each address and each IP may ask ResetsPerAddress and
// ResetsPerIP times an hour; past that it is refused, for registered and
// unknown addresses alike.
func (s *Service) RequestPasswordReset(ctx context.Context, email, ip string) error {
	floor := time.NewTimer(s.resetAnswerTime)
	defer func() {
		select {
		case <-floor.C:
		case <-ctx.Done():
			floor.Stop()
		}
	}()
	email = normalizeEmail(email)
	if err := checkEmail(email); err != nil {
		return err
	}
	if err := s.countReset(ctx, email, ip); err != nil {
		return err
	}
	now := s.now()
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var userID string
		err := tx.QueryRow(ctx, `SELECT id FROM users WHERE lower(email) = $1 AND disabled_at IS NULL`, email).Scan(&userID)
		if errors.Is(err, pgx.ErrNoRows) {
			// The same audit row without an account: the address is not
			// recorded, so the trail does not collect strangers' e-mails.
			return audit.Record(ctx, tx, audit.Event{At: now, IP: ip, Action: "password_reset.requested",
				Details: map[string]any{"account": false}})
		}
		if err != nil {
			return err
		}
		token, err := s.randomToken(resetTokenBytes)
		if err != nil {
			return err
		}
		expires := now.Add(ResetLinkTTL)
		if _, err := tx.Exec(ctx, `INSERT INTO password_resets (token_hash, user_id, created_at, expires_at, ip)
			VALUES ($1, $2, $3, $4, $5)`, digest(token), userID, now, expires, ip); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Event{At: now, UserID: userID, IP: ip, Action: "password_reset.requested",
			Details: map[string]any{"account": true, "expires_at": expires.UTC().Format(time.RFC3339)}}); err != nil {
			return err
		}
		if s.onReset == nil {
			s.log.Warn().Str("user_id", userID).Msg("password reset requested, but nothing sends its e-mail")
			return nil
		}
		return s.onReset(ctx, tx, userID, token, expires)
	})
	if err != nil {
		return internal("request password reset", err)
	}
	return nil
}

// countReset refuses a reset request when the address or the IP asked too
// often in the last hour, and counts this one otherwise.
func (s *Service) countReset(ctx context.Context, email, ip string) error {
	now := s.now()
	type limit struct {
		key string
		max int
	}
	limits := []limit{{resetAddrKey(email), ResetsPerAddress}}
	if ip != "" {
		limits = append(limits, limit{resetIPKey(ip), ResetsPerIP})
	}
	for _, l := range limits {
		var n int
		var last time.Time
		err := s.pool.QueryRow(ctx, `SELECT failures, last_failure_at FROM auth_throttle WHERE key = $1`, l.key).Scan(&n, &last)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return internal("count reset request", err)
		}
		if err == nil && n >= l.max && now.Sub(last) < time.Hour {
			return &errs.Error{Code: errs.RateLimited, Message: "too many password reset requests; try again later",
				RetryAfter: last.Add(time.Hour).Sub(now)}
		}
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		for _, l := range limits {
			if _, err := bump(ctx, tx, l.key, now, throttlePolicy{decay: time.Hour}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return internal("count reset request", err)
	}
	return nil
}

func errBadResetLink() error {
	return errs.Fields("invalid reset link", errs.FieldError{Field: "token",
		Message: "this link is invalid, was already used or has expired; ask for a new one"})
}

// CompletePasswordReset sets a new password with the token of a reset
// link, once: the link and every other outstanding link of the account
// stop working, and every session of the account ends. It does not sign
// in: the next sign-in still needs the second factor.
func (s *Service) CompletePasswordReset(ctx context.Context, token, newPassword, ip string) error {
	if err := CheckPassword("new_password", newPassword); err != nil {
		return err
	}
	if token == "" || len(token) > 128 {
		return errBadResetLink()
	}
	now := s.now()
	var userID string
	err := s.pool.QueryRow(ctx, `SELECT r.user_id FROM password_resets r JOIN users u ON u.id = r.user_id
		WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > $2 AND u.disabled_at IS NULL`,
		digest(token), now).Scan(&userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return errBadResetLink()
	}
	if err != nil {
		return internal("reset password", err)
	}
	hash, err := s.hashPassword(ctx, newPassword)
	if err != nil {
		return internal("reset password", err)
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		// Claiming the link in the transaction that uses it makes it
		// single-use even when two requests race with it.
		tag, err := tx.Exec(ctx, `UPDATE password_resets SET used_at = $3
			WHERE token_hash = $1 AND user_id = $2 AND used_at IS NULL AND expires_at > $3`, digest(token), userID, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errBadResetLink()
		}
		if _, err := tx.Exec(ctx, `UPDATE password_resets SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL`, userID, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1`, userID, hash, now); err != nil {
			return err
		}
		ended, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		details := map[string]any{"via": "reset_link", "sessions_ended": ended.RowsAffected()}
		if err := audit.Record(ctx, tx, audit.Event{At: now, UserID: userID, ActorID: userID, IP: ip, Action: "password.reset",
			Details: details}); err != nil {
			return err
		}
		return s.securityEvent(ctx, tx, userID, "security.password_changed",
			map[string]any{"ip": ip, "via": "reset_link", "sessions_ended": ended.RowsAffected()})
	})
	if err != nil {
		return internal("reset password", err)
	}
	return nil
}
