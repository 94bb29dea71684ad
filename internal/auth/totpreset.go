package auth

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
)

// ResetTOTP turns off userID's two-step sign-in for someone who lost their
// authenticator and recovery codes: the TOTP secret, the recovery codes and
// the remembered browsers go, and every session ends, so the next sign-in
// with the password leads to enrolment again. actorID is the admin; the
// reset is audited in the same transaction. An admin cannot reset their
// own: that is the user's Settings, where a code proves who asks.
func (s *Service) ResetTOTP(ctx context.Context, actorID, userID, ip string) (User, error) {
	if !ValidID(userID) {
		return User{}, errs.E(errs.NotFound, "no such user")
	}
	if actorID == userID {
		return User{}, errs.E(errs.Conflict, "you cannot reset your own two-step sign-in")
	}
	var u User
	now := s.now()
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRow(ctx, `
			UPDATE users SET totp_secret = NULL, totp_pending_secret = NULL, totp_enabled = false, updated_at = $2
			WHERE id = $1 RETURNING `+userColumns, userID, now))
		if errors.Is(err, pgx.ErrNoRows) {
			return errs.E(errs.NotFound, "no such user")
		}
		if err != nil {
			return err
		}
		codes, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		devices, err := tx.Exec(ctx, `DELETE FROM remembered_devices WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		sessions, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Event{At: now, UserID: userID, ActorID: actorID, IP: ip, Action: "totp.reset",
			Subject: u.Email, Details: map[string]any{
				"recovery_codes_removed": codes.RowsAffected(),
				"devices_forgotten":      devices.RowsAffected(),
				"sessions_ended":         sessions.RowsAffected(),
			}})
	})
	if err != nil {
		return User{}, internal("reset two-step sign-in", err)
	}
	return u, nil
}
