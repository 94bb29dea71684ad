package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/lease"
	"github.com/ordertune/ordertune/internal/trading"
)

// Leases is what the cache needs of package lease's Manager: with many
// replicas, only the owner of a tenant's session lease hand-shakes, opens
// the brokerage session, tickles and places orders for the tenant.
type Leases interface {
	// Held reports, from memory, whether this replica holds k and under
	// which generation.
	Held(k lease.Key) (int64, bool)
	// Acquire takes k (from memory when held) or fails with a
	// *lease.BusyError naming the owner.
	Acquire(ctx context.Context, k lease.Key) (int64, error)
	// ReleaseUser gives up this replica's leases on the user's sessions.
	ReleaseUser(ctx context.Context, userID string) error
}

// leaseRetryAfter is what a request for a tenant served by another
// replica is told to wait before trying again.
const leaseRetryAfter = time.Second

// owns reports whether this replica may act on t's cached session: it
// holds the lease the session was made under. Without leases (one
// replica) it always may. The caller holds t.mu; it reads memory only.
func (c *Cache) owns(t *tenant) bool {
	if c.cfg.Leases == nil || t.tok.Value == "" {
		return true
	}
	gen, ok := c.cfg.Leases.Held(lease.Key{UserID: t.userID, Mode: string(t.conn.Mode)})
	return ok && gen == t.gen
}

// disown forgets t's session after its lease was lost: another replica may
// have superseded the LST and taken the brokerage session. The caller
// holds t.mu.
func (c *Cache) disown(t *tenant) {
	t.tok = ibkr.LiveSessionToken{}
	t.brokerage, t.accounts, t.competing, t.lstBad = false, false, false, false
}

// lease acquires the session lease of userID's mode and returns its
// generation; without leases it returns 0.
func (c *Cache) lease(ctx context.Context, userID string, mode Mode) (int64, error) {
	if c.cfg.Leases == nil {
		return 0, nil
	}
	gen, err := c.cfg.Leases.Acquire(ctx, lease.Key{UserID: userID, Mode: string(mode)})
	var busy *lease.BusyError
	switch {
	case err == nil:
		return gen, nil
	case errors.As(err, &busy), errors.Is(err, lease.ErrDraining):
		return 0, &errs.Error{Code: errs.BrokerUnavailable, RetryAfter: leaseRetryAfter, Err: fmt.Errorf("%w: %w", trading.ErrServedElsewhere, err),
			Message: "this account's IBKR session is being served by another server; try again in a moment"}
	default:
		return 0, errs.Wrap(err, errs.Unavailable, "")
	}
}

// servedElsewhere reports whether err says another replica holds the
// tenant's lease (or this one is shutting down): nothing was refused, so it
// is not remembered as a failure.
func servedElsewhere(err error) bool {
	var busy *lease.BusyError
	return errors.As(err, &busy) || errors.Is(err, lease.ErrDraining)
}

// LeaseLost drops the cached session of a lease this replica lost (package
// lease's OnLost): it must not tickle or place orders on it any more. A
// session whose generation this replica holds again by now (it took the
// lease back while the loss was being reported) is kept: generations never
// repeat, so no other replica held the tenant in between.
func (c *Cache) LeaseLost(k lease.Key) {
	c.withCached(k.UserID, func(t *tenant) {
		if string(t.conn.Mode) == k.Mode && !c.owns(t) {
			c.disown(t)
		}
	})
}

// releaseLeases gives up this replica's leases on userID's sessions after
// the cached session was invalidated (new credentials, another mode, a
// Test Connection's token), so the next request may be served anywhere.
func (c *Cache) releaseLeases(userID string) {
	if c.cfg.Leases == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A failed release only means the lease expires instead.
	_ = c.cfg.Leases.ReleaseUser(ctx, userID)
}
