package trading

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Fills is what the executions of one confirmation's order add up to, as
// the ledger stored them.
type Fills struct {
	ConfirmationID string
	// OrderID is the broker's order id the executions carry.
	OrderID string
	// Quantity and AvgPrice are decimals.
	Quantity, AvgPrice string
}

// RecordFills brings the user's working confirmations up to what their
// executions show: a fill that polling the order missed (IBKR's order
// status and orders list can lag, or lose an order at a restart) is
// recovered from the executions, and the confirmation's status, filled
// quantity and average price follow, with a status-history entry and its
// notification. A row that is pending (its confirm request is still
// running) or already settled is left alone, as is one whose stored fill
// is not behind the executions. It returns how many rows changed.
func (s *Service) RecordFills(ctx context.Context, userID string, fills []Fills) (int, error) {
	n := 0
	var problems []error
	for _, f := range fills {
		ok, err := s.recordFills(ctx, userID, f)
		if err != nil {
			problems = append(problems, fmt.Errorf("record fills of %s: %w", f.ConfirmationID, err))
		}
		if ok {
			n++
		}
	}
	return n, errors.Join(problems...)
}

// recordFills records f on its row when it says more than the row does.
func (s *Service) recordFills(ctx context.Context, userID string, f Fills) (bool, error) {
	var r claimed
	err := s.pool.QueryRow(ctx, `
		SELECT id, user_id, status, mode, broker_order_id, filled_quantity::text, avg_fill_price::text, broker_status,
			error_message, quantity, misses, created_at, updated_at
		FROM confirmations
		WHERE id::text = $1 AND user_id = $2 AND status IN ('submitted', 'partially_filled', 'unknown')`,
		f.ConfirmationID, userID).Scan(&r.id, &r.userID, &r.status, &r.mode, &r.brokerOrderID, &r.filled, &r.avgPrice, &r.brokerStatus,
		&r.errMessage, &r.quantity, &r.misses, &r.createdAt, &r.updatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	got, ok1 := parseDecimal(f.Quantity)
	had, ok2 := parseDecimal(orZero(r.filled))
	if !ok1 || !ok2 || got.Cmp(had) <= 0 {
		return false, nil
	}
	st := OrderState{OrderID: f.OrderID, COID: r.id, Filled: f.Quantity, AvgPrice: f.AvgPrice, Status: "Submitted"}
	if r.brokerOrderID != nil && *r.brokerOrderID != "" {
		st.OrderID = *r.brokerOrderID
	}
	if got.Cmp(ratInt(r.quantity)) >= 0 {
		st.Status = "Filled"
	}
	o := track(st, r.quantity)
	now := s.cfg.Now().UTC()
	if o.nextCheck.IsZero() {
		o.message += " (recovered from IBKR's executions)"
	} else {
		// Part filled: reconciliation goes on asking about the rest.
		o.message = "partially filled (recovered from IBKR's executions; the rest is being looked up)"
		o.nextCheck = now.Add(s.cfg.ReconcileInterval)
	}
	if err := s.recordReconciled(ctx, r, o, now); err != nil {
		return false, err
	}
	return true, nil
}
