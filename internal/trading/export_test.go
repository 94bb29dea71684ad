package trading

import (
	"context"
	"fmt"

	"github.com/ordertune/ordertune/internal/risk"
)

// DurableWrites runs only a confirm's two writes for the previewed order p
// — the pending row with its history and audit rows, committed
// synchronously, then the outcome "submitted" with its own — without the
// reads, the checks or IBKR. The benchmark uses it to take a confirm's cost
// apart.
func (s *Service) DurableWrites(ctx context.Context, userID, key string, p Preview) error {
	id := s.cfg.NewID()
	w, b := s.pendingRow(ctx, userID, key, requestHash(p.SignalID, string(p.Side)), id, p, risk.Snapshot{})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if !w.inserted {
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
	sn, err := s.risk.Snapshot(ctx, userID)
	if err != nil {
		return Confirmation{}, err
	}
	c, _, err := s.confirmPreviewed(ctx, userID, key, requestHash(p.SignalID, string(p.Side)), p, sn)
	return c, err
}

// KeepUnsent makes the service remember, as a confirm does when the
// database fails it, that confirmation id's order was never sent.
func (s *Service) KeepUnsent(id string) {
	s.kept.keep(id, outcome{status: StatusFailed, errCode: "unavailable",
		errMessage: "the confirmation could not be recorded; nothing was sent to IBKR", message: "not recorded in time; nothing sent"}, s.cfg.Now().UTC())
}
