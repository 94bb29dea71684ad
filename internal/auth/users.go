package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
)

// NewUser is what creating an account needs.
type NewUser struct {
	Email    string
	Role     Role
	Password string
}

// checkEmail accepts a plausible address: one @, no spaces, at most 254
// bytes. Whether it receives mail is not our concern.
func checkEmail(email string) error {
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(email, " \t\r\n") ||
		strings.Contains(domain, "@") || len(email) > 254 {
		return errs.Fields("invalid email", errs.FieldError{Field: "email", Message: "must be an email address"})
	}
	return nil
}

func (nu NewUser) check() error {
	var fields []errs.FieldError
	if e := errs.As(checkEmail(strings.TrimSpace(nu.Email))); e != nil {
		fields = append(fields, e.Fields...)
	}
	if !nu.Role.Valid() {
		fields = append(fields, errs.FieldError{Field: "role", Message: "must be admin or subscriber"})
	}
	if e := errs.As(CheckPassword("password", nu.Password)); e != nil {
		fields = append(fields, e.Fields...)
	}
	if len(fields) > 0 {
		return errs.Fields("invalid user", fields...)
	}
	return nil
}

// CreateUser creates an account. actorID is the admin creating it, or ""
// for the command line and for sign-up.
func (s *Service) CreateUser(ctx context.Context, actorID string, nu NewUser, ip string) (User, error) {
	var u User
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		u, err = s.createUser(ctx, tx, actorID, nu, ip)
		return err
	})
	if err != nil {
		return User{}, internal("create user", err)
	}
	return u, nil
}

func (s *Service) createUser(ctx context.Context, tx pgx.Tx, actorID string, nu NewUser, ip string) (User, error) {
	if err := nu.check(); err != nil {
		return User{}, err
	}
	hash, err := s.hashPassword(ctx, nu.Password)
	if err != nil {
		return User{}, err
	}
	now := s.now()
	u, err := scanUser(tx.QueryRow(ctx, `
		INSERT INTO users (email, role, password_hash, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4)
		RETURNING `+userColumns, strings.TrimSpace(nu.Email), nu.Role, hash, now))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return User{}, errs.E(errs.Conflict, "an account with this email exists")
	}
	if err != nil {
		return User{}, err
	}
	actor := actorID
	if actor == "" {
		actor = u.ID
	}
	err = audit.Record(ctx, tx, audit.Event{At: now, UserID: u.ID, ActorID: actor, IP: ip, Action: "user.created",
		Subject: u.Email, Details: map[string]any{"role": string(u.Role)}})
	return u, err
}

// Signup creates a subscriber account when open sign-up is on. It answers
// the same for an address that already has an account, so sign-up cannot
// be used to learn who is registered; the owner of that account is told
// instead (a security.signup_attempt event). Each address (IP)
// may try SignupPerIP times an hour.
func (s *Service) Signup(ctx context.Context, email, password, ip string) error {
	if !s.signup {
		return errs.E(errs.Forbidden, "sign-up is closed; ask an admin for an account")
	}
	nu := NewUser{Email: email, Role: Subscriber, Password: password}
	if err := nu.check(); err != nil {
		return err
	}
	if err := s.countSignup(ctx, ip); err != nil {
		return err
	}
	_, err := s.CreateUser(ctx, "", nu, ip)
	if errs.Is(err, errs.Conflict) {
		return s.signupExisting(ctx, email, ip)
	}
	return err
}

// signupKey is the throttle row counting an address's sign-ups.
func signupKey(ip string) string { return "signup:" + ip }

// countSignup refuses a sign-up when ip made SignupPerIP of them in the
// last hour, and counts this one otherwise.
func (s *Service) countSignup(ctx context.Context, ip string) error {
	if ip == "" {
		return nil
	}
	now := s.now()
	var n int
	var last time.Time
	err := s.pool.QueryRow(ctx, `SELECT failures, last_failure_at FROM auth_throttle WHERE key = $1`, signupKey(ip)).Scan(&n, &last)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return internal("count sign-up", err)
	}
	if err == nil && n >= s.signupPerIP && now.Sub(last) < time.Hour {
		return &errs.Error{Code: errs.RateLimited, Message: "too many sign-ups from this address; try again later",
			RetryAfter: last.Add(time.Hour).Sub(now)}
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		_, err := bump(ctx, tx, signupKey(ip), now, throttlePolicy{decay: time.Hour})
		return err
	})
	if err != nil {
		return internal("count sign-up", err)
	}
	return nil
}

// signupExisting records a sign-up attempt with a registered address and
// tells its owner.
func (s *Service) signupExisting(ctx context.Context, email, ip string) error {
	var userID string
	err := s.tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT id FROM users WHERE lower(email) = $1`, normalizeEmail(email)).Scan(&userID)
		if err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Event{At: s.now(), UserID: userID, IP: ip, Action: "signup.existing_email"}); err != nil {
			return err
		}
		return s.securityEvent(ctx, tx, userID, "security.signup_attempt", map[string]any{"ip": ip})
	})
	if err != nil {
		return internal("sign-up", err)
	}
	return nil
}

// User returns the account with id.
func (s *Service) User(ctx context.Context, id string) (User, error) {
	if !ValidID(id) {
		return User{}, errs.E(errs.NotFound, "no such user")
	}
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, errs.E(errs.NotFound, "no such user")
	}
	if err != nil {
		return User{}, internal("get user", err)
	}
	return u, nil
}

// ListUsers returns up to limit accounts in creation order after the
// opaque cursor, and the cursor of the next page ("" at the end).
func (s *Service) ListUsers(ctx context.Context, limit int, cursor string) ([]User, string, error) {
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	after, afterID, err := parseCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users
		WHERE (created_at, id) > ($1, $2) ORDER BY created_at, id LIMIT $3`, after, afterID, limit+1)
	if err != nil {
		return nil, "", internal("list users", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return scanUser(r) })
	if err != nil {
		return nil, "", internal("list users", err)
	}
	next := ""
	if len(users) > limit {
		users = users[:limit]
		next = makeCursor(users[limit-1])
	}
	return users, next, nil
}

// makeCursor encodes the position after u in creation order.
func makeCursor(u User) string {
	return base64.RawURLEncoding.EncodeToString([]byte(u.CreatedAt.Format(time.RFC3339Nano) + "|" + u.ID))
}

// parseCursor reads a cursor from makeCursor; "" is the start.
func parseCursor(cursor string) (time.Time, string, error) {
	if cursor == "" {
		return time.Time{}, "00000000-0000-0000-0000-000000000000", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	ts, id, ok := strings.Cut(string(b), "|")
	t, terr := time.Parse(time.RFC3339Nano, ts)
	if err != nil || !ok || terr != nil || !ValidID(id) {
		return time.Time{}, "", errs.Fields("invalid cursor", errs.FieldError{Field: "cursor", Message: "not a cursor this API returned"})
	}
	return t, id, nil
}

// SetDisabled disables an account, ending all its sessions, or enables it
// again, which also lifts a lockout. Admins cannot disable themselves: a
// product with no admin left cannot be repaired from the UI.
func (s *Service) SetDisabled(ctx context.Context, actorID, userID string, disabled bool, ip string) (User, error) {
	if !ValidID(userID) {
		return User{}, errs.E(errs.NotFound, "no such user")
	}
	if disabled && actorID == userID {
		return User{}, errs.E(errs.Conflict, "you cannot disable your own account")
	}
	var u User
	now := s.now()
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		if disabled {
			u, err = scanUser(tx.QueryRow(ctx, `UPDATE users SET disabled_at = coalesce(disabled_at, $2), updated_at = $2
				WHERE id = $1 RETURNING `+userColumns, userID, now))
		} else {
			u, err = scanUser(tx.QueryRow(ctx, `UPDATE users SET disabled_at = NULL, locked_at = NULL, updated_at = $2
				WHERE id = $1 RETURNING `+userColumns, userID, now))
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return errs.E(errs.NotFound, "no such user")
		}
		if err != nil {
			return err
		}
		action := "user.enabled"
		if disabled {
			action = "user.disabled"
			if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID); err != nil {
				return err
			}
		} else if err := resetAccount(ctx, tx, u.Email); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Event{At: now, UserID: userID, ActorID: actorID, IP: ip, Action: action, Subject: u.Email})
	})
	if err != nil {
		return User{}, internal("set user disabled", err)
	}
	return u, nil
}

// ChangePassword replaces the user's password after checking the current
// one, and ends every other session of the user; keepSession (the caller's
// own) stays. A wrong current password counts as a failed attempt.
func (s *Service) ChangePassword(ctx context.Context, userID, keepSession, current, next, ip string) error {
	if err := CheckPassword("new_password", next); err != nil {
		return err
	}
	var email, hash string
	err := s.pool.QueryRow(ctx, `SELECT email, password_hash FROM users WHERE id = $1`, userID).Scan(&email, &hash)
	if err != nil {
		return internal("change password", err)
	}
	end, err := s.beginAttempt(email)
	if err != nil {
		return err
	}
	defer end()
	if err := s.checkThrottle(ctx, email, ip); err != nil {
		return err
	}
	ok, err := s.verifyPassword(ctx, hash, current)
	if err != nil {
		return internal("change password", err)
	}
	if !ok {
		if err := s.recordFailure(ctx, failure{email: email, userID: userID, ip: ip, stage: "current_password", reason: "wrong password"}); err != nil {
			return err
		}
		return errs.Fields("wrong password", errs.FieldError{Field: "current_password", Message: "is not your current password"})
	}
	newHash, err := s.hashPassword(ctx, next)
	if err != nil {
		return internal("change password", err)
	}
	now := s.now()
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1`, userID, newHash, now); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2`, userID, digest(keepSession))
		if err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Event{At: now, UserID: userID, ActorID: userID, IP: ip, Action: "password.changed",
			Details: map[string]any{"sessions_ended": tag.RowsAffected()}}); err != nil {
			return err
		}
		return s.securityEvent(ctx, tx, userID, "security.password_changed", map[string]any{"ip": ip, "sessions_ended": tag.RowsAffected()})
	})
	if err != nil {
		return internal("change password", err)
	}
	return nil
}
