package trading

import (
	"context"
	"errors"
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

// recordLocked records a confirm's outcome o on the lock's connection and
// releases the lock in the same round trip (with the OnOutcome hook, in
// the same transaction; the hook's writes follow). The next order of the
// account thus sees this one's outcome. When the row has moved on
// meanwhile (another instance's reconciliation settled it), it returns
// the row as it is.
func (s *Service) recordLocked(ctx context.Context, id string, o outcome, lo *lockedOrder) (Confirmation, error) {
	// From unknown too: another instance's reconciliation may have taken
	// the row for abandoned meanwhile, and this answer is better evidence
	// than its lookup.
	from := []Status{StatusPending, StatusUnknown}
	sql, args, err := applyStatement(id, from, o, s.cfg.Now().UTC())
	if err != nil {
		return Confirmation{}, err
	}
	var c Confirmation
	changed := true
	b := &pgx.Batch{}
	b.Queue(sql, args...).QueryRow(func(row pgx.Row) error {
		var err error
		if c, err = scanConfirmation(row); errors.Is(err, pgx.ErrNoRows) {
			changed, err = false, nil
		}
		return err
	})
	b.Queue(unlockSQL, lo.accountID)
	if s.cfg.OnOutcome == nil {
		err = lo.conn.SendBatch(ctx, b).Close()
	} else {
		err = pgx.BeginFunc(ctx, lo.conn, func(tx pgx.Tx) error {
			if err := tx.SendBatch(ctx, b).Close(); err != nil || !changed {
				return err
			}
			return s.cfg.OnOutcome(ctx, tx, c)
		})
	}
	if err != nil {
		return Confirmation{}, err
	}
	lo.done(true)
	if !changed {
		return s.confirmationAny(ctx, id)
	}
	return c, nil
}
