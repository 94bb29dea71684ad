package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
)

// LockAfter is how many consecutive failures lock an account until an
// admin enables it again.
const LockAfter = 100

// throttlePolicy says how many failures a key gets for free and how the
// wait grows after that.
type throttlePolicy struct {
	free  int           // failures before any wait
	base  time.Duration // the first wait, doubled with each further failure
	max   time.Duration // the longest wait
	decay time.Duration // quiet time after which the count starts over; 0: never
}

// accountPolicy throttles an account's password and code guesses; its count
// ends only with a successful sign-in, so it also drives the lockout.
func accountPolicy() throttlePolicy {
	return throttlePolicy{free: 5, base: 30 * time.Second, max: 15 * time.Minute}
}

// ipPolicy throttles one address across accounts (password spraying). It is
// looser, since many people may share an address.
func ipPolicy() throttlePolicy {
	return throttlePolicy{free: 20, base: 30 * time.Second, max: 15 * time.Minute, decay: time.Hour}
}

func acctKey(email string) string { return "acct:" + normalizeEmail(email) }

// devKey counts the failures of a user's remembered devices, in place of
// the account's count, which anyone knowing the e-mail can drive up.
func devKey(userID string) string { return "dev:" + userID }
func ipKey(ip string) string      { return "ip:" + ip }

// wait returns how long after the last failure the next attempt must wait.
func (p throttlePolicy) wait(failures int) time.Duration {
	if failures < p.free {
		return 0
	}
	d := p.base
	for i := p.free; i < failures && d < p.max; i++ {
		d *= 2
	}
	return min(d, p.max)
}

// checkThrottle refuses an attempt while the account's or the address's
// back-off runs, with the time left as Retry-After.
func (s *Service) checkThrottle(ctx context.Context, email, ip string) error {
	return s.checkThrottleKey(ctx, acctKey(email), ip)
}

// checkThrottleKey is checkThrottle with the account's key given: acctKey,
// or devKey for an attempt from a remembered device.
func (s *Service) checkThrottleKey(ctx context.Context, key, ip string) error {
	now := s.now()
	keys := []string{key}
	pols := []throttlePolicy{accountPolicy()}
	if ip != "" {
		keys, pols = append(keys, ipKey(ip)), append(pols, ipPolicy())
	}
	var retry time.Duration
	for i, k := range keys {
		var failures int
		var last time.Time
		err := s.pool.QueryRow(ctx, `SELECT failures, last_failure_at FROM auth_throttle WHERE key = $1`, k).Scan(&failures, &last)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return internal("check throttle", err)
		}
		p := pols[i]
		if p.decay > 0 && now.Sub(last) > p.decay {
			continue
		}
		if left := last.Add(p.wait(failures)).Sub(now); left > retry {
			retry = left
		}
	}
	if retry > 0 {
		return &errs.Error{Code: errs.RateLimited, Message: "too many failed attempts; wait before trying again", RetryAfter: retry}
	}
	return nil
}

// beginAttempt lets one attempt per account run at a time, so parallel
// guesses cannot all slip past the throttle before the first failure is
// recorded.
func (s *Service) beginAttempt(email string) (end func(), err error) {
	return s.beginAttemptKey(acctKey(email))
}

// beginAttemptKey is beginAttempt with the account's key given, as for
// checkThrottleKey.
func (s *Service) beginAttemptKey(k string) (end func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight[k] {
		return nil, &errs.Error{Code: errs.RateLimited, Message: "another attempt for this account is under way; wait for it", RetryAfter: time.Second}
	}
	s.inflight[k] = true
	return func() {
		s.mu.Lock()
		delete(s.inflight, k)
		s.mu.Unlock()
	}, nil
}

// failure describes one failed attempt for recordFailure.
type failure struct {
	email  string
	userID string // "" when the email names no account
	ip     string
	stage  string // password, totp, recovery_code, current_password
	reason string
	// device is set for an attempt from a remembered device: its own
	// count (devKey) grows too, and throttles it instead of the account's.
	device bool
}

// recordFailure counts a failed attempt against the account and the
// address, writes its audit row, and locks the account at LockAfter
// consecutive failures — all in one transaction of its own, committed even
// though the request fails.
func (s *Service) recordFailure(ctx context.Context, f failure) error {
	now := s.now()
	err := s.tx(ctx, func(tx pgx.Tx) error {
		n, err := bump(ctx, tx, acctKey(f.email), now, accountPolicy())
		if err != nil {
			return err
		}
		if f.device && f.userID != "" {
			if _, err := bump(ctx, tx, devKey(f.userID), now, accountPolicy()); err != nil {
				return err
			}
		}
		if f.ip != "" {
			if _, err := bump(ctx, tx, ipKey(f.ip), now, ipPolicy()); err != nil {
				return err
			}
		}
		if err := audit.Record(ctx, tx, audit.Event{At: now, UserID: f.userID, IP: f.ip, Action: "login.failure",
			Details: map[string]any{"stage": f.stage, "reason": f.reason, "consecutive_failures": n}}); err != nil {
			return err
		}
		if f.userID == "" || n < LockAfter {
			return nil
		}
		tag, err := tx.Exec(ctx, `UPDATE users SET locked_at = $2, updated_at = $2 WHERE id = $1 AND locked_at IS NULL`, f.userID, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, f.userID); err != nil {
			return err
		}
		s.log.Warn().Str("user_id", f.userID).Int("failures", n).Msg("account locked after consecutive failed attempts")
		if err := audit.Record(ctx, tx, audit.Event{At: now, UserID: f.userID, IP: f.ip, Action: "user.locked",
			Details: map[string]any{"consecutive_failures": n}}); err != nil {
			return err
		}
		// The owner hears of it (by e-mail): anyone who knows the address
		// can cause it, and only the owner can tell whether it was them.
		return s.securityEvent(ctx, tx, f.userID, "security.account_locked", map[string]any{"ip": f.ip, "consecutive_failures": n})
	})
	if err != nil {
		return internal("record failed attempt", err)
	}
	return nil
}

// bump adds one failure to key and returns the new count.
func bump(ctx context.Context, tx pgx.Tx, key string, now time.Time, p throttlePolicy) (int, error) {
	var cutoff time.Time // the zero time: no decay
	if p.decay > 0 {
		cutoff = now.Add(-p.decay)
	}
	var n int
	err := tx.QueryRow(ctx, `
		INSERT INTO auth_throttle (key, failures, last_failure_at) VALUES ($1, 1, $2)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN auth_throttle.last_failure_at < $3 THEN 1 ELSE auth_throttle.failures + 1 END,
			last_failure_at = $2
		RETURNING failures`, key, now, cutoff).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count failure: %w", err)
	}
	return n, nil
}

// resetAccount clears an account's failure count after a full sign-in.
func resetAccount(ctx context.Context, tx pgx.Tx, email string) error {
	_, err := tx.Exec(ctx, `DELETE FROM auth_throttle WHERE key = $1`, acctKey(email))
	return err
}
