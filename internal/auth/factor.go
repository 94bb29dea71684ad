package auth

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/errs"
)

// check refuses a SecondFactor that carries both codes or neither.
func (f SecondFactor) check() error {
	if (strings.TrimSpace(f.Code) == "") == (strings.TrimSpace(f.RecoveryCode) == "") {
		return errs.Fields("send one code", errs.FieldError{Field: "code", Message: "send either code or recovery_code"})
	}
	return nil
}

// preparedFactor is a second factor after its slow, read-only part (opening
// the TOTP secret, or matching a recovery code against its hashes), ready
// to be used inside a transaction by useFactor.
type preparedFactor struct {
	recovery   bool
	code       string // the TOTP code
	secret     string // the opened TOTP secret
	recoveryID string // the matching unused recovery code; "" when none matched
}

// stage names the factor in audit rows and failure counts.
func (pf preparedFactor) stage() string {
	if pf.recovery {
		return "recovery_code"
	}
	return "totp"
}

// prepareFactor does the work of checking f that needs no transaction, so
// no connection is held while argon2 runs. f must have passed check.
func (s *Service) prepareFactor(ctx context.Context, userID string, f SecondFactor) (preparedFactor, error) {
	if rc := strings.TrimSpace(f.RecoveryCode); rc != "" {
		id, err := s.matchRecoveryCode(ctx, userID, rc)
		return preparedFactor{recovery: true, recoveryID: id}, err
	}
	var sealed []byte
	if err := s.pool.QueryRow(ctx, `SELECT totp_secret FROM users WHERE id = $1`, userID).Scan(&sealed); err != nil {
		return preparedFactor{}, err
	}
	secret, err := s.openSecret(userID, sealed)
	if err != nil {
		return preparedFactor{}, err
	}
	return preparedFactor{code: strings.TrimSpace(f.Code), secret: string(secret)}, nil
}

// useFactor consumes a prepared factor in tx and reports whether it was
// accepted: a TOTP code of an accepted step newer than the last one used
// (the replay guard), or a recovery code not used before.
func (s *Service) useFactor(ctx context.Context, tx pgx.Tx, userID string, pf preparedFactor, now time.Time) (bool, error) {
	if pf.recovery {
		return useRecoveryCode(ctx, tx, userID, pf.recoveryID, now)
	}
	return s.acceptTOTP(ctx, tx, userID, pf.secret, pf.code, false)
}
