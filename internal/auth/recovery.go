package auth

import (
	"context"
	"crypto/subtle"
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

// newRecoveryCodes makes a set of codes and their argon2id hashes. The
// hashing runs before any transaction opens, so no connection waits on it.
func (s *Service) newRecoveryCodes(ctx context.Context) (codes, hashes []string, err error) {
	codes = make([]string, RecoveryCodeCount)
	hashes = make([]string, RecoveryCodeCount)
	for i := range codes {
		b := make([]byte, 10)
		if _, err := readFull(s.rand, b); err != nil {
			return nil, nil, err
		}
		c := recoveryEncoding.EncodeToString(b)
		codes[i] = c[0:4] + "-" + c[4:8] + "-" + c[8:12] + "-" + c[12:16]
		if hashes[i], err = s.hashWith(ctx, s.recoveryArgon, normalizeRecovery(codes[i])); err != nil {
			return nil, nil, err
		}
	}
	return codes, hashes, nil
}

// replaceRecoveryCodes deletes the user's codes (legacy ones too) and
// stores the hashes of a new set from newRecoveryCodes.
func replaceRecoveryCodes(ctx context.Context, tx pgx.Tx, userID string, hashes []string, now time.Time) error {
	if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
		return err
	}
	for _, h := range hashes {
		if _, err := tx.Exec(ctx, `INSERT INTO recovery_codes (user_id, code_argon2, created_at) VALUES ($1, $2, $3)`,
			userID, h, now); err != nil {
			return err
		}
	}
	return nil
}

// matchRecoveryCode returns the id of userID's unused recovery code equal
// to code, or "" when none is. Salted hashes cannot be looked up, so each
// unused code's hash is checked (ten at most). Rows from before migration
// 8 hold an unsalted SHA-256 digest instead; they are still accepted until
// used or replaced, since their owners may have printed them.
func (s *Service) matchRecoveryCode(ctx context.Context, userID, code string) (string, error) {
	c := normalizeRecovery(code)
	if len(c) != 16 {
		return "", nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, code_hash, coalesce(code_argon2, '') FROM recovery_codes
		WHERE user_id = $1 AND used_at IS NULL`, userID)
	if err != nil {
		return "", err
	}
	type stored struct {
		id     string
		legacy []byte
		phc    string
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (stored, error) {
		var st stored
		return st, r.Scan(&st.id, &st.legacy, &st.phc)
	})
	if err != nil {
		return "", err
	}
	for _, st := range all {
		if st.phc == "" {
			if subtle.ConstantTimeCompare(st.legacy, digest(c)) == 1 {
				return st.id, nil
			}
			continue
		}
		ok, err := s.verifyPassword(ctx, st.phc, c)
		if err != nil {
			return "", err
		}
		if ok {
			return st.id, nil
		}
	}
	return "", nil
}

// useRecoveryCode marks the unused code id (from matchRecoveryCode) as
// used and reports whether it was still unused; the conditional UPDATE
// makes each code work once.
func useRecoveryCode(ctx context.Context, tx pgx.Tx, userID, id string, now time.Time) (bool, error) {
	if id == "" {
		return false, nil
	}
	tag, err := tx.Exec(ctx, `UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND id = $2 AND used_at IS NULL`,
		userID, id, now)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// RegenerateRecoveryCodes replaces the user's recovery codes with a new
// set, returned once; the old ones stop working.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, userID, ip string) ([]string, error) {
	codes, hashes, err := s.newRecoveryCodes(ctx)
	if err != nil {
		return nil, internal("regenerate recovery codes", err)
	}
	now := s.now()
	err = s.tx(ctx, func(tx pgx.Tx) error {
		var enabled bool
		if err := tx.QueryRow(ctx, `SELECT totp_enabled FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&enabled); err != nil {
			return err
		}
		if !enabled {
			return errs.E(errs.Conflict, "turn on two-factor authentication first")
		}
		if err := replaceRecoveryCodes(ctx, tx, userID, hashes, now); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Event{At: now, UserID: userID, ActorID: userID, IP: ip, Action: "recovery_codes.regenerated"})
	})
	if err != nil {
		return nil, internal("regenerate recovery codes", err)
	}
	return codes, nil
}
