package auth

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
)

// deviceIDBytes is the size of a remembered-device token: 256 random bits.
const deviceIDBytes = 32

// DeviceMaxAge returns how long a browser stays remembered after its last
// full sign-in: the cookie's lifetime.
func (s *Service) DeviceMaxAge() time.Duration { return s.deviceMaxAge }

// RememberDevice is called after a full sign-in (password and second
// factor) of userID and returns the token the browser keeps to be
// recognized at its next sign-in. A current token of the same user is
// renewed and returned as it is; anything else (none, expired, another
// user's) gets a new one. Only the token's SHA-256 is stored.
func (s *Service) RememberDevice(ctx context.Context, userID, current string) (string, error) {
	now := s.now()
	if current != "" && len(current) <= 128 {
		tag, err := s.pool.Exec(ctx, `UPDATE remembered_devices SET last_used_at = $3, expires_at = $4
			WHERE id_hash = $1 AND user_id = $2 AND expires_at > $3`, digest(current), userID, now, now.Add(s.deviceMaxAge))
		if err != nil {
			return "", internal("remember device", err)
		}
		if tag.RowsAffected() == 1 {
			return current, nil
		}
	}
	tok, err := s.randomToken(deviceIDBytes)
	if err != nil {
		return "", internal("remember device", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO remembered_devices (id_hash, user_id, created_at, last_used_at, expires_at)
		VALUES ($1, $2, $3, $3, $4)`, digest(tok), userID, now, now.Add(s.deviceMaxAge))
	if err != nil {
		return "", internal("remember device", err)
	}
	return tok, nil
}

// deviceOwner returns the id of the account the remembered-device token
// belongs to when that account's e-mail is email, and "" otherwise.
func (s *Service) deviceOwner(ctx context.Context, token, email string) (string, error) {
	if token == "" || len(token) > 128 {
		return "", nil
	}
	var userID string
	err := s.pool.QueryRow(ctx, `SELECT d.user_id FROM remembered_devices d JOIN users u ON u.id = d.user_id
		WHERE d.id_hash = $1 AND d.expires_at > $2 AND lower(u.email) = $3`, digest(token), s.now(), email).Scan(&userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", internal("check remembered device", err)
	}
	return userID, nil
}

// unlockFromDevice lifts a lock-out when its owner has just signed in
// fully (password and second factor) from a remembered device: the lock
// was the work of failures elsewhere. The device's own count starts over.
func unlockFromDevice(ctx context.Context, tx pgx.Tx, userID, ip string, now time.Time) error {
	if _, err := tx.Exec(ctx, `DELETE FROM auth_throttle WHERE key = $1`, devKey(userID)); err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `UPDATE users SET locked_at = NULL, updated_at = $2 WHERE id = $1 AND locked_at IS NOT NULL`, userID, now)
	if err != nil || tag.RowsAffected() == 0 {
		return err
	}
	return audit.Record(ctx, tx, audit.Event{At: now, UserID: userID, ActorID: userID, IP: ip, Action: "user.unlocked",
		Details: map[string]any{"via": "remembered_device"}})
}
