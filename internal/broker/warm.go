package broker

import "context"

// Warm makes the user's session ready for orders, as Session does, without
// handing one out. A ready session costs a look-up under the tenant's lock:
// no pacer is taken, no ibkr.Session built, nothing is read from the
// database. A cold one waits for the tenant's handshake (one at a time per
// tenant, however many wait). The error is Session's.
//
// The trading feature warms a session before it takes an account's lock,
// so that a burst of cold tenants (the first orders after a restart) never
// holds a lock's pooled connection through a handshake.
func (c *Cache) Warm(ctx context.Context, userID string) error {
	c.mu.Lock()
	t := c.tenants[userID]
	c.mu.Unlock()
	if t != nil {
		now := c.cfg.Now()
		t.mu.Lock()
		ready := t.ready(now) && now.Before(t.renewAt) && c.owns(t)
		t.mu.Unlock()
		if ready {
			return nil
		}
	}
	_, _, err := c.Session(ctx, userID)
	return err
}
