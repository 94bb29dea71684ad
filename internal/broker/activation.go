package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// IBKR activates a new consumer key hours after it is registered; until
// then Test Connection answers "consumer key not recognized" and the
// credentials are pending_activation. The activation check re-tests them
// so the user hears when they work instead of polling.
const (
	// ActivationInterval is how often pending credentials are re-tested.
	ActivationInterval = 30 * time.Minute
	// ActivationWindow is how long after they became pending they are
	// re-tested; after it, only the user's own Test Connection helps.
	ActivationWindow = 72 * time.Hour
)

// activationMargin lets a round that starts a little early (the periodic
// job is not to the second) still take connections last checked one
// interval ago.
const activationMargin = 2 * time.Minute

// activationBatch bounds the connections one round re-tests.
const activationBatch = 200

// CheckPendingActivations re-tests the saved credentials that are
// pending_activation, became so less than ActivationWindow ago and were
// not re-tested in the last ActivationInterval. Each connection is
// claimed first, so replicas running rounds at once never test one twice.
// A test that passes makes the connection connected, and OnActivated tells
// the user in the same transaction. It returns how many were activated.
// Tests run one after another, outside any transaction.
func (s *Service) CheckPendingActivations(ctx context.Context) (int, error) {
	now := s.now()
	due := now.Add(-ActivationInterval + activationMargin)
	// Every tenant's pending connections: the round is the system's, and
	// each claim and test below names its tenant.
	rows, _ := s.pool.Query(ctx, `SELECT user_id, mode FROM broker_connections
		WHERE status = 'pending_activation' AND pending_since > $1
		  AND (activation_checked_at IS NULL OR activation_checked_at <= $2)
		ORDER BY pending_since LIMIT $3`, now.Add(-ActivationWindow), due, activationBatch)
	type pending struct {
		userID string
		mode   Mode
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pending, error) {
		var p pending
		err := r.Scan(&p.userID, &p.mode)
		return p, err
	})
	if err != nil {
		return 0, fmt.Errorf("list pending activations: %w", err)
	}
	activated := 0
	for _, p := range list {
		if ctx.Err() != nil {
			return activated, ctx.Err()
		}
		tag, err := s.pool.Exec(ctx, `UPDATE broker_connections SET activation_checked_at = $4
			WHERE user_id = $1 AND mode = $2 AND status = 'pending_activation'
			  AND (activation_checked_at IS NULL OR activation_checked_at <= $3)`, p.userID, string(p.mode), due, now)
		if err != nil {
			return activated, fmt.Errorf("claim pending activation: %w", err)
		}
		if tag.RowsAffected() == 0 {
			continue // another replica took it, or it changed meanwhile
		}
		res, err := s.Test(ctx, p.userID, p.mode, nil, Actor{})
		if err != nil {
			return activated, fmt.Errorf("re-test pending activation: %w", err)
		}
		if res.OK {
			activated++
		}
	}
	return activated, nil
}
