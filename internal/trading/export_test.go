package trading

import (
	"context"
	"fmt"
)

// DurableWrites runs only a confirm's two writes for the previewed order p
// — the pending row with its history and audit rows, committed
// synchronously, then the outcome "submitted" with its own — without the
// reads, the checks or IBKR. The benchmark uses it to take a confirm's cost
// apart.
func (s *Service) DurableWrites(ctx context.Context, userID, key string, p Preview) error {
	id := s.cfg.NewID()
	inserted, err := s.insertPending(ctx, userID, key, requestHash(p.SignalID, string(p.Side)), id, p)
	if err != nil {
		return err
	}
	if !inserted {
		return fmt.Errorf("key %q or signal %s already confirmed", key, p.SignalID)
	}
	now := s.cfg.Now().UTC()
	_, changed, err := apply(ctx, s.pool, id, []Status{StatusPending}, outcome{status: StatusSubmitted, conid: 265598,
		brokerOrderID: "1", brokerStatus: "PreSubmitted", message: "IBKR accepted the order",
		nextCheck: now.Add(s.cfg.ReconcileInterval)}, now)
	if err == nil && !changed {
		err = fmt.Errorf("confirmation %s was not pending", id)
	}
	return err
}

// ConfirmPreviewed confirms the order of a preview made earlier, skipping
// the confirm's own preview: what a confirm does when another confirm
// changes the position between its preview and its insert.
func (s *Service) ConfirmPreviewed(ctx context.Context, userID, key string, p Preview) (Confirmation, error) {
	c, _, err := s.confirmPreviewed(ctx, userID, key, requestHash(p.SignalID, string(p.Side)), p)
	return c, err
}
