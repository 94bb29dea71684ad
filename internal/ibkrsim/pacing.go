package ibkrsim

import (
	"math"
	"strings"
	"time"
)

// Pacing holds IBKR's rate limits. Zero fields take IBKR's values.
type Pacing struct {
	// Disabled turns pacing off (benchmarks, load tests).
	Disabled bool
	// PerSecond and Burst bound every session's requests (default 10/s, burst 10).
	PerSecond float64
	Burst     int
	// OrdersListInterval spaces GET /iserver/account/orders,
	// /iserver/account/trades and /portfolio/accounts (default 5 s).
	OrdersListInterval time.Duration
	// TickleInterval spaces POST /tickle (default 1 s).
	TickleInterval time.Duration
	// PenaltyBox is how long a session that broke the global limit is refused
	// (IBKR: 10–15 minutes; default 10 minutes). Negative means none.
	PenaltyBox time.Duration
}

func (p Pacing) withDefaults() Pacing {
	if p.PerSecond <= 0 {
		p.PerSecond = 10
	}
	if p.Burst <= 0 {
		p.Burst = 10
	}
	if p.OrdersListInterval <= 0 {
		p.OrdersListInterval = 5 * time.Second
	}
	if p.TickleInterval <= 0 {
		p.TickleInterval = time.Second
	}
	if p.PenaltyBox == 0 {
		p.PenaltyBox = 10 * time.Minute
	}
	return p
}

// pacer is one session's budget; the owning consumer's mu guards it.
type pacer struct {
	tokens     float64
	last       time.Time
	penalty    time.Time // refused until then
	lastList   time.Time
	lastTrades time.Time
	lastTickle time.Time
	// lastPortfolio spaces GET /portfolio/accounts (IBKR: 1 per 5 s).
	lastPortfolio time.Time
}

// pace charges one request and reports the Retry-After seconds when it is over
// a limit.
func (s *Server) pace(c *consumer, rel string, now time.Time) (int, bool) {
	p := s.cfg.Pacing
	if p.Disabled {
		return 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	pc := &c.pace
	if now.Before(pc.penalty) {
		s.totals.penalty.Add(1)
		return retryAfter(pc.penalty.Sub(now)), true
	}
	if pc.last.IsZero() {
		pc.tokens = float64(p.Burst)
	} else if el := now.Sub(pc.last).Seconds(); el > 0 {
		pc.tokens = math.Min(float64(p.Burst), pc.tokens+el*p.PerSecond)
	}
	pc.last = now
	if pc.tokens < 1 {
		wait := time.Duration((1 - pc.tokens) / p.PerSecond * float64(time.Second))
		if p.PenaltyBox > 0 {
			s.totals.penalty.Add(1)
			pc.penalty = now.Add(p.PenaltyBox)
			wait = p.PenaltyBox
		}
		return retryAfter(wait), true
	}
	var slot *time.Time
	interval := p.OrdersListInterval
	switch {
	case rel == "/iserver/account/orders":
		slot = &pc.lastList
	case rel == "/iserver/account/trades":
		slot = &pc.lastTrades
	case rel == "/tickle":
		slot, interval = &pc.lastTickle, p.TickleInterval
	case rel == "/portfolio/accounts":
		slot = &pc.lastPortfolio
	case strings.HasPrefix(rel, "/iserver/account/orders/"):
		slot = &pc.lastList
	}
	if slot != nil && !slot.IsZero() && now.Sub(*slot) < interval {
		return retryAfter(interval - now.Sub(*slot)), true
	}
	pc.tokens--
	if slot != nil {
		*slot = now
	}
	return 0, false
}

func retryAfter(d time.Duration) int {
	sec := int(math.Ceil(d.Seconds()))
	if sec < 1 {
		sec = 1
	}
	return sec
}
