package auth

import (
	"context"
	"time"

	"github.com/ordertune/ordertune/internal/tick"
)

// Sweep deletes sessions past their idle or absolute timeout and throttle
// rows whose back-off and decay have long run out, and returns how many
// rows it removed. Expired sessions are refused anyway; sweeping keeps the
// tables small. Account counts are kept while they could still lead to a
// lockout, so only those older than a day past the longest wait go.
func (s *Service) Sweep(ctx context.Context) (int64, error) {
	now := s.now()
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE last_seen_at < $1 OR created_at < $2`,
		now.Add(-s.idle), now.Add(-s.maxAge))
	if err != nil {
		return 0, internal("sweep sessions", err)
	}
	n := tag.RowsAffected()
	tag, err = s.pool.Exec(ctx, `DELETE FROM auth_throttle
		WHERE ((key LIKE 'ip:%' OR key LIKE 'signup:%' OR key LIKE 'reset:%') AND last_failure_at < $1) OR
		      ((key LIKE 'acct:%' OR key LIKE 'dev:%') AND last_failure_at < $2)`,
		now.Add(-ipPolicy().decay), now.Add(-accountPolicy().max-24*time.Hour))
	if err != nil {
		return n, internal("sweep throttle", err)
	}
	n += tag.RowsAffected()
	tag, err = s.pool.Exec(ctx, `DELETE FROM remembered_devices WHERE expires_at < $1`, now)
	if err != nil {
		return n, internal("sweep remembered devices", err)
	}
	n += tag.RowsAffected()
	tag, err = s.pool.Exec(ctx, `DELETE FROM password_resets WHERE expires_at < $1`, now.Add(-24*time.Hour))
	if err != nil {
		return n, internal("sweep password resets", err)
	}
	return n + tag.RowsAffected(), nil
}

// RunSweeper calls Sweep every interval until ctx ends.
func (s *Service) RunSweeper(ctx context.Context, every time.Duration) {
	log := s.log.With().Str("worker", "auth_sweep").Logger()
	tick.Every(ctx, every, func() {
		if n, err := s.Sweep(ctx); err != nil {
			log.Error().Err(err).Msg("auth sweep failed")
		} else if n > 0 {
			log.Debug().Int64("rows", n).Msg("auth sweep removed expired rows")
		}
	})
}
