package trading

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/errs"
)

// ConfirmationByKey returns userID's confirmation made with the
// Idempotency-Key key, without placing anything: errs.NotFound when no
// confirmation holds the key yet (a confirm with it has not written its
// pending row). A server shutting down answers its confirms in flight
// with it.
func (s *Service) ConfirmationByKey(ctx context.Context, userID, key string) (Confirmation, error) {
	if err := checkKey(key); err != nil {
		return Confirmation{}, err
	}
	c, err := scanConfirmation(s.pool.QueryRow(ctx,
		`SELECT `+confColumns+` FROM confirmations c WHERE c.user_id = $1 AND c.idempotency_key = $2`, userID, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return Confirmation{}, errs.E(errs.NotFound, "no confirmation with this Idempotency-Key")
	}
	if err != nil {
		return Confirmation{}, fmt.Errorf("read confirmation by key: %w", err)
	}
	return c, nil
}
