package auth

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
)

// sessionIDBytes is the size of a session id: 256 random bits.
const sessionIDBytes = 32

// touchEvery limits how often a session's last-seen time is written; the
// idle timeout is counted in minutes, so finer writes buy nothing.
const touchEvery = 30 * time.Second

func errNoSession() error { return errs.E(errs.Unauthenticated, "sign in first") }

// newSession stores a session for userID and returns its id, which only
// the cookie ever holds. started is when the sign-in began: the absolute
// timeout counts from it across rotations.
func (s *Service) newSession(ctx context.Context, tx pgx.Tx, userID string, full bool, started time.Time, ip string) (string, error) {
	return s.newSessionFrom(ctx, tx, userID, full, false, started, ip)
}

// newSessionFrom is newSession for a sign-in that may come from a
// remembered device (deviceTrusted), which lets the password-only session
// through the account's lock-out to its second step.
func (s *Service) newSessionFrom(ctx context.Context, tx pgx.Tx, userID string, full, deviceTrusted bool, started time.Time, ip string) (string, error) {
	id, err := s.randomToken(sessionIDBytes)
	if err != nil {
		return "", err
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO sessions (id_hash, user_id, full_auth, device_trusted, created_at, last_seen_at, ip)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, digest(id), userID, full, deviceTrusted, started, s.now(), ip)
	return id, err
}

// sessionRow is a stored session joined with its user.
type sessionRow struct {
	userID      string
	full        bool
	created     time.Time
	lastSeen    time.Time
	email       string
	role        Role
	totpEnabled bool
	blocked     bool // disabled, or locked (unless begun from a remembered device)
	stepUpUntil *time.Time
	// deviceTrusted: a password-only session begun from a remembered
	// device; its second step is throttled per device, not per account.
	deviceTrusted bool
}

// loadSession finds a live session by id. Expired sessions, and those of
// disabled or locked users, are deleted and reported as unauthenticated.
func (s *Service) loadSession(ctx context.Context, id string) (sessionRow, error) {
	var r sessionRow
	if id == "" || len(id) > 128 {
		return r, errNoSession()
	}
	h := digest(id)
	err := s.pool.QueryRow(ctx, `
		SELECT s.user_id, s.full_auth, s.created_at, s.last_seen_at, u.email, u.role, u.totp_enabled,
		       u.disabled_at IS NOT NULL OR (u.locked_at IS NOT NULL AND NOT s.device_trusted),
		       s.step_up_until, s.device_trusted
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id_hash = $1`, h).Scan(&r.userID, &r.full, &r.created, &r.lastSeen, &r.email, &r.role, &r.totpEnabled, &r.blocked,
		&r.stepUpUntil, &r.deviceTrusted)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, errNoSession()
	}
	if err != nil {
		return r, internal("load session", err)
	}
	now := s.now()
	if r.blocked || now.Sub(r.lastSeen) > s.idle || now.Sub(r.created) > s.maxAge {
		if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, h); err != nil {
			return r, internal("end session", err)
		}
		return r, errs.E(errs.Unauthenticated, "the session has ended; sign in again")
	}
	if now.Sub(r.lastSeen) >= touchEvery {
		if _, err := s.pool.Exec(ctx, touchSQL, h, now); err != nil {
			return r, internal("touch session", err)
		}
	}
	return r, nil
}

// touchSQL records a session's last-seen time. Its commit does not wait
// for the WAL flush (synchronous_commit off, for this statement's
// transaction only): a crash may lose the last fraction of a second of
// touches, which moves an idle timeout counted in minutes by as much,
// while a flush per request would put every signed-in request (each
// confirm of a market-open storm) in the queue for the disk next to the
// write-ahead rows that must wait for it.
const touchSQL = `
	WITH async AS (SELECT set_config('synchronous_commit', 'off', true))
	UPDATE sessions SET last_seen_at = $2 FROM async WHERE id_hash = $1`

// Authenticate returns the principal of a session id taken from a cookie.
func (s *Service) Authenticate(ctx context.Context, sessionID string) (Principal, error) {
	r, err := s.loadSession(ctx, sessionID)
	if err != nil {
		return Principal{}, err
	}
	p := Principal{UserID: r.userID, Email: r.email, Role: r.role, Full: r.full, TOTPEnabled: r.totpEnabled}
	if r.full && r.stepUpUntil != nil {
		p.StepUpUntil = r.stepUpUntil.UTC()
	}
	return p, nil
}

// rotateSession replaces the session old with a new id that is fully
// authenticated, keeping its start time, and returns the new id. A new id
// after the second factor means an id seen before it (planted or sniffed)
// is worthless.
func (s *Service) rotateSession(ctx context.Context, tx pgx.Tx, old string, r sessionRow, ip string) (string, error) {
	if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, digest(old)); err != nil {
		return "", err
	}
	return s.newSession(ctx, tx, r.userID, true, r.created, ip)
}

// Logout ends the session server-side.
func (s *Service) Logout(ctx context.Context, sessionID, ip string) error {
	if sessionID == "" {
		return nil
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var userID string
		err := tx.QueryRow(ctx, `DELETE FROM sessions WHERE id_hash = $1 RETURNING user_id`, digest(sessionID)).Scan(&userID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Event{At: s.now(), UserID: userID, ActorID: userID, IP: ip, Action: "logout"})
	})
	if err != nil {
		return internal("logout", err)
	}
	return nil
}
