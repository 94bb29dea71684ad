package passthrough

import (
	"crypto/sha256"
	"sync"
)

// sidCache remembers each tenant's IBKR WebSocket session id (the "api"
// cookie a tickle returns) for the live session token it belongs to, so
// that opening many sockets costs one tickle per token rather than one per
// socket (tickles are limited to one a second). Only a hash of the token is
// kept.
type sidCache struct {
	mu sync.Mutex
	m  map[string]sidEntry
}

type sidEntry struct {
	token [sha256.Size]byte
	sid   string
}

// fingerprint hashes a live session token so the cache need not hold it.
func fingerprint(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

func (c *sidCache) get(userID string, token [sha256.Size]byte) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[userID]
	if !ok || e.token != token {
		return "", false
	}
	return e.sid, true
}

func (c *sidCache) put(userID string, token [sha256.Size]byte, sid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]sidEntry{}
	}
	c.m[userID] = sidEntry{token: token, sid: sid}
}

func (c *sidCache) forget(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, userID)
}
