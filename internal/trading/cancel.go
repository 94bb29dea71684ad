package trading

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
)

// Cancel asks IBKR to cancel userID's working order id. IBKR takes it as a
// request: the confirmation turns "cancelled" when reconciliation sees the
// order cancelled (or "filled" if the fill came first).
func (s *Service) Cancel(ctx context.Context, userID, id string) (Confirmation, error) {
	c, err := s.confirmation(ctx, s.pool, userID, id, false)
	if err != nil {
		return Confirmation{}, err
	}
	switch c.Status {
	case StatusSubmitted, StatusPartiallyFilled:
	case StatusPending, StatusUnknown:
		return Confirmation{}, errs.E(errs.Conflict, "the order's outcome is not known yet; try again in a moment")
	default:
		return Confirmation{}, errs.E(errs.Conflict, "the order is %s; there is nothing to cancel", c.Status)
	}
	if c.BrokerOrderID == nil {
		return Confirmation{}, errs.E(errs.Conflict, "IBKR has not given this order an id yet; try again in a moment")
	}
	ack, err := s.broker.CancelOrder(ctx, userID, c.Mode, *c.BrokerOrderID)
	if errors.Is(err, ErrAccountChanged) {
		return Confirmation{}, errs.E(errs.Conflict, "this order was placed with your %s connection; make it active to cancel the order", c.Mode)
	}
	if err != nil {
		return Confirmation{}, fmt.Errorf("cancel order %s: %w", *c.BrokerOrderID, err)
	}
	now := s.cfg.Now().UTC()
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE confirmations SET next_check_at = $2 WHERE id = $1 AND user_id = $3`, id, now, userID); err != nil {
			return err
		}
		if err := addEvent(ctx, tx, id, now, outcome{status: c.Status, message: "cancel requested: " + ack}); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Event{At: now, UserID: userID, ActorID: userID, Action: "confirmation.cancel_request", Subject: id,
			Details: map[string]any{"broker_order_id": *c.BrokerOrderID}})
	})
	if err != nil {
		return Confirmation{}, fmt.Errorf("record cancel request of %s: %w", id, err)
	}
	return s.Confirmation(ctx, userID, id)
}
