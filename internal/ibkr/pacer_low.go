package ibkr

import (
	"context"
	"time"

	"golang.org/x/time/rate"
)

// WaitLow is Wait for requests that yield to everything else on the session,
// such as the read-only calls a pass-through proxy relays for a browser: the
// order path (Wait) always goes first.
//
// Wait reserves the next free slot even when it lies in the future, so its
// callers queue in order. WaitLow never holds a future slot: it takes one
// only when the endpoint's limit and the global one both have a token free
// right now, and otherwise sleeps until one should be and looks again. A
// request through Wait therefore never waits behind a low-priority one; it
// may only find the current slot taken. Like Wait, WaitLow fails at once
// when the wait would pass ctx's deadline (the error carries how long).
func (p *Pacer) WaitLow(ctx context.Context, endpoint string) error {
	lims := make([]*rate.Limiter, 0, 2)
	if e := p.endpoint(endpoint); e != nil {
		lims = append(lims, e.lim)
	}
	if p.global != nil {
		lims = append(lims, p.global)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		p.mu.Lock()
		now := p.now()
		d := p.tryTake(now, lims)
		p.mu.Unlock()
		if d <= 0 {
			return nil
		}
		if deadline, ok := ctx.Deadline(); ok && deadline.Sub(now) < d {
			return &paceDeadlineError{wait: d}
		}
		if err := p.sleep(ctx, d); err != nil {
			return err
		}
	}
}

// tryTake takes one token from every limiter when all have one free at now
// and returns 0; otherwise it takes nothing and returns how long until the
// scarcest one should have a token.
func (p *Pacer) tryTake(now time.Time, lims []*rate.Limiter) time.Duration {
	var wait time.Duration
	for _, lim := range lims {
		if d := untilToken(lim, now); d > wait {
			wait = d
		}
	}
	if wait > 0 {
		return wait
	}
	taken := make([]*rate.Reservation, 0, len(lims))
	for _, lim := range lims {
		r := lim.ReserveN(now, 1)
		if d := r.DelayFrom(now); !r.OK() || d > 0 {
			// A Wait caller took the token between the look and the take:
			// give back what this round took and let it go first.
			r.CancelAt(now)
			for _, t := range taken {
				t.CancelAt(now)
			}
			if d <= 0 {
				d = time.Millisecond
			}
			return d
		}
		taken = append(taken, r)
	}
	return 0
}

// untilToken is how long until lim has a whole token at its rate.
func untilToken(lim *rate.Limiter, now time.Time) time.Duration {
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	r := float64(lim.Limit())
	if r <= 0 {
		return time.Hour
	}
	d := time.Duration((1 - tokens) / r * float64(time.Second))
	if d < time.Microsecond {
		d = time.Microsecond
	}
	return d
}
