package broker

import (
	"time"

	"github.com/ordertune/ordertune/internal/ibkr"
)

// Pacer leases: a session handed out by Session keeps its account's pacer
// for sessionLease; after the last use a pacer lingers for pacerLinger,
// longer than IBKR's slowest limit (1 request per 5 s), so evicting it
// afterwards loses no pacing state.
const (
	sessionLease = 5 * time.Minute
	pacerLinger  = 10 * time.Second
)

// pacerEntry is one account's pacer and who holds it; Cache.mu guards it.
type pacerEntry struct {
	p     *ibkr.Pacer
	refs  int
	until time.Time
}

// acquirePacer returns the account's pacer and holds it for at least hold;
// every acquire is paired with a release.
func (c *Cache) acquirePacer(accountID string, hold time.Duration) *pacerEntry {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.pacers[accountID]
	if e == nil {
		e = &pacerEntry{p: ibkr.NewPacer()}
		c.pacers[accountID] = e
	}
	e.refs++
	if u := now.Add(hold); u.After(e.until) {
		e.until = u
	}
	return e
}

// releasePacer ends one hold; the pacer lingers for pacerLinger.
func (c *Cache) releasePacer(e *pacerEntry) {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	if u := now.Add(pacerLinger); u.After(e.until) {
		e.until = u
	}
}

// evictPacers forgets the pacers nobody holds or used lately.
func (c *Cache) evictPacers(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for acct, e := range c.pacers {
		if e.refs <= 0 && now.After(e.until) {
			delete(c.pacers, acct)
		}
	}
}
