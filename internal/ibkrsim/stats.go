package ibkrsim

import (
	"net/http"
	"sync/atomic"
	"time"
)

// Stats counts what the simulator answered since it started: what a load
// test reads to check that IBKR's limits were kept and sessions held.
type Stats struct {
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

// stats is Stats as the server updates it.
type stats struct {
	requests, handshakes, tickles, tooMany, penalty, expired atomic.Int64
}

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	st := &s.stats
	return Stats{
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
		s.stats.expired.Add(1)
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
