package broker

import "github.com/ordertune/ordertune/internal/ibkr"

// Current reports whether sess (from Session or Do) still signs with the
// user's cached live session token. It turns false once the token is renewed
// or refused by IBKR, or the connection is changed or dropped: a long-lived
// use of sess, such as the pass-through WebSocket bridge, then ends so that
// the client reconnects on the new session.
func (c *Cache) Current(userID string, sess *ibkr.Session) bool {
	if sess == nil {
		return false
	}
	current := false
	c.withCached(userID, func(t *tenant) {
		current = !t.dropped && !t.lstBad && t.tok.Value != "" && sess.Token().Value == t.tok.Value
	})
	return current
}
