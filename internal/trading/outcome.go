package trading

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// applyOutcome is apply with the OnOutcome hook: when one is set, the
// status change and what the hook writes (the notification's event and
// its queued deliveries) share one transaction.
func (s *Service) applyOutcome(ctx context.Context, id string, from []Status, o outcome, now time.Time) (Confirmation, bool, error) {
	if s.cfg.OnOutcome == nil {
		return apply(ctx, s.pool, id, from, o, now)
	}
	var c Confirmation
	var changed bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if c, changed, err = apply(ctx, tx, id, from, o, now); err != nil || !changed {
			return err
		}
		return s.cfg.OnOutcome(ctx, tx, c)
	})
	if err != nil {
		return Confirmation{}, false, err
	}
	return c, changed, nil
}
