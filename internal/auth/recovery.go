package auth

import (
	"context"
	"encoding/base32"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
)

// RecoveryCodeCount is how many recovery codes a user gets at a time.
const RecoveryCodeCount = 10

// recoveryEncoding writes codes in lower-case RFC 4648 base32, which has no
// 0, 1 or 8 to confuse with letters; 10 random bytes give 16 characters, 80 bits.
var recoveryEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// normalizeRecovery lets people type a code with or without dashes,
// spaces or capitals.
func normalizeRecovery(code string) string {
	code = strings.ToLower(code)
	return strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, code)
}

// replaceRecoveryCodes deletes the user's codes and stores a new set,
// hashed; the plain codes are returned to be shown once.
func (s *Service) replaceRecoveryCodes(ctx context.Context, tx pgx.Tx, userID string, now time.Time) ([]string, error) {
	if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
		return nil, err
	}
	codes := make([]string, RecoveryCodeCount)
	for i := range codes {
		b := make([]byte, 10)
		if _, err := readFull(s.rand, b); err != nil {
			return nil, err
		}
		c := recoveryEncoding.EncodeToString(b)
		codes[i] = c[0:4] + "-" + c[4:8] + "-" + c[8:12] + "-" + c[12:16]
		if _, err := tx.Exec(ctx, `INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)`,
			userID, digest(normalizeRecovery(codes[i])), now); err != nil {
			return nil, err
		}
	}
	return codes, nil
}

// useRecoveryCode marks an unused code as used and reports whether there
// was one; the conditional UPDATE makes each code work once.
func useRecoveryCode(ctx context.Context, tx pgx.Tx, userID, code string, now time.Time) (bool, error) {
	c := normalizeRecovery(code)
	if len(c) != 16 {
		return false, nil
	}
	tag, err := tx.Exec(ctx, `UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL`,
		userID, digest(c), now)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// RegenerateRecoveryCodes replaces the user's recovery codes with a new
// set, returned once; the old ones stop working.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, userID, ip string) ([]string, error) {
	var codes []string
	now := s.now()
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var enabled bool
		if err := tx.QueryRow(ctx, `SELECT totp_enabled FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&enabled); err != nil {
			return err
		}
		if !enabled {
			return errs.E(errs.Conflict, "turn on two-factor authentication first")
		}
		var err error
		if codes, err = s.replaceRecoveryCodes(ctx, tx, userID, now); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Event{At: now, UserID: userID, ActorID: userID, IP: ip, Action: "recovery_codes.regenerated"})
	})
	if err != nil {
		return nil, internal("regenerate recovery codes", err)
	}
	return codes, nil
}
