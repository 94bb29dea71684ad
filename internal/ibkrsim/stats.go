package ibkrsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync/atomic"
	"time"
)

// ConsumerStats counts what one consumer's clients did, as GET /sim/stats
// reports it. Tests of many replicas read it to prove that one replica
// owns each tenant's session: two replicas hand-shaking for one consumer
// show up as superseded-token refusals, two opening the brokerage session
// as competing take-overs.
type ConsumerStats struct {
	// Handshakes counts live session tokens issued.
	Handshakes int64 `json:"handshakes"`
	// SupersededLSTRefusals counts requests refused because they were
	// signed with a token a newer handshake superseded.
	SupersededLSTRefusals int64 `json:"superseded_lst_refusals"`
	// Inits counts POST /iserver/auth/ssodh/init calls.
	Inits int64 `json:"inits"`
	// CompetingTakeovers counts inits that took over a brokerage session
	// that was alive.
	CompetingTakeovers int64 `json:"competing_takeovers"`
	// OtherLoginsSignedOut counts inits that took the brokerage session
	// back from another login (Client Portal, TWS) holding it
	// (compete:true while competing).
	OtherLoginsSignedOut int64 `json:"other_logins_signed_out"`
	// Requests counts the consumer's authenticated API requests.
	Requests int64 `json:"requests"`
}

// supersededKept is how many superseded tokens a consumer remembers to
// recognise late requests signed with them.
const supersededKept = 4

// supersede records that the consumer's current token is replaced; the
// caller holds c.mu.
func (c *consumer) supersede() {
	if c.lst == nil {
		return
	}
	c.superseded = append(c.superseded, c.lst)
	if len(c.superseded) > supersededKept {
		c.superseded = c.superseded[len(c.superseded)-supersededKept:]
	}
}

// signedBySuperseded reports whether sig verifies under one of the
// consumer's superseded tokens for one of the candidate base strings; the
// caller holds c.mu.
func (c *consumer) signedBySuperseded(candidates []string, sig string) bool {
	for _, old := range c.superseded {
		for _, b := range candidates {
			m := hmac.New(sha256.New, old)
			m.Write([]byte(b))
			want := base64.StdEncoding.EncodeToString(m.Sum(nil))
			if subtle.ConstantTimeCompare([]byte(want), []byte(sig)) == 1 {
				return true
			}
		}
	}
	return false
}

// Stats returns every consumer's counters, by consumer key.
func (s *Server) Stats() map[string]ConsumerStats {
	s.mu.RLock()
	cs := make([]*consumer, 0, len(s.consumers))
	for _, c := range s.consumers {
		cs = append(cs, c)
	}
	s.mu.RUnlock()
	out := make(map[string]ConsumerStats, len(cs))
	for _, c := range cs {
		c.mu.Lock()
		out[c.key] = c.stats
		c.mu.Unlock()
	}
	return out
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

// Totals count what the simulator answered since it started, over all
// consumers: what a load test reads (GET /sim/totals) to check that IBKR's
// limits were kept and sessions held.
type Totals struct {
	// Requests counts IBKR API requests received, refused ones included.
	Requests int64 `json:"requests"`
	// Handshakes counts live session tokens issued.
	Handshakes int64 `json:"handshakes"`
	// Tickles counts POST /tickle requests served.
	Tickles int64 `json:"tickles"`
	// TooManyRequests counts the 429 answers of IBKR's pacing (a fault's
	// 429 is not counted).
	TooManyRequests int64 `json:"too_many_requests"`
	// PenaltyBox counts those 429 answers that put a session in the
	// penalty box or were given while it was there.
	PenaltyBox int64 `json:"penalty_box"`
	// SessionsExpired counts brokerage sessions ended because they saw no
	// request for the session timeout.
	SessionsExpired int64 `json:"sessions_expired"`
}

// totals is Totals as the server updates it.
type totals struct {
	requests, handshakes, tickles, tooMany, penalty, expired atomic.Int64
}

// Totals returns the counters so far.
func (s *Server) Totals() Totals {
	st := &s.totals
	return Totals{
		Requests:        st.requests.Load(),
		Handshakes:      st.handshakes.Load(),
		Tickles:         st.tickles.Load(),
		TooManyRequests: st.tooMany.Load(),
		PenaltyBox:      st.penalty.Load(),
		SessionsExpired: st.expired.Load(),
	}
}

// sessionAlive is brokerSession.alive that counts an expiry; the caller
// holds c.mu.
func (s *Server) sessionAlive(c *consumer, now time.Time) bool {
	was := c.sess.bridge
	ok := c.sess.alive(now, s.cfg.SessionIdleTimeout)
	if was && !c.sess.bridge {
		s.totals.expired.Add(1)
	}
	return ok
}

// delay holds an API request for the configured latency, as a distant
// IBKR would, and reports false when the client gave up meanwhile.
func (s *Server) delay(r *http.Request) bool {
	if s.cfg.Latency <= 0 {
		return true
	}
	t := time.NewTimer(s.cfg.Latency)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}
