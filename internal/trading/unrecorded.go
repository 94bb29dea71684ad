package trading

import (
	"context"
	"sync"
	"time"
)

// unrecordedTTL is how long an outcome that could not be recorded is kept
// for reconciliation. Its row is due after PendingGrace; a row that never
// committed is never due, and its entry is dropped after this.
const unrecordedTTL = time.Hour

// unrecorded holds the outcomes this process knows but could not write
// (the database was down), by confirmation id. Above all it holds the
// positive evidence that an order was never sent — the only evidence on
// which a confirmation may become failed — so that reconciliation records
// it instead of looking for an order that does not exist.
type unrecorded struct {
	mu sync.Mutex
	m  map[string]unrecordedOutcome
}

type unrecordedOutcome struct {
	o  outcome
	at time.Time
}

// keep remembers o for confirmation id.
func (u *unrecorded) keep(id string, o outcome, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]unrecordedOutcome{}
	}
	u.m[id] = unrecordedOutcome{o: o, at: now}
}

// take returns and forgets the outcome kept for id.
func (u *unrecorded) take(id string) (outcome, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	k, ok := u.m[id]
	delete(u.m, id)
	return k.o, ok
}

// expire drops entries kept before cutoff.
func (u *unrecorded) expire(cutoff time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for id, k := range u.m {
		if k.at.Before(cutoff) {
			delete(u.m, id)
		}
	}
}

// recordKept records the outcomes this process kept for the claimed rows
// that are still pending or unknown, and returns the rows left to look up
// at IBKR.
func (s *Service) recordKept(ctx context.Context, rows []claimed) ([]claimed, error) {
	now := s.cfg.Now().UTC()
	s.kept.expire(now.Add(-unrecordedTTL))
	var left []claimed
	var firstErr error
	for _, r := range rows {
		o, ok := s.kept.take(r.id)
		if !ok || r.status != StatusPending && r.status != StatusUnknown {
			left = append(left, r)
			continue
		}
		if _, _, err := s.applyOutcome(ctx, r.id, []Status{StatusPending, StatusUnknown}, o, now); err != nil {
			s.kept.keep(r.id, o, now)
			if firstErr == nil {
				firstErr = err
			}
			left = append(left, r)
		}
	}
	return left, firstErr
}
