package ibkr

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// PacerLimits are the request rates a Pacer keeps to, per IBKR session.
type PacerLimits struct {
	// Global applies to every request (IBKR: 10 per second per session).
	Global rate.Limit
	// LiveOrders paces GET /iserver/account/orders (1 per 5 s).
	LiveOrders rate.Limit
	// Trades paces GET /iserver/account/trades (1 per 5 s).
	Trades rate.Limit
	// Tickle paces POST /tickle (1 per second).
	Tickle rate.Limit
	// PortfolioAccounts paces GET /portfolio/accounts (1 per 5 s).
	PortfolioAccounts rate.Limit
}

// ArrivalJitter is added to IBKR's one-request-per-interval limits (live
// orders, trades, tickle, portfolio accounts). IBKR measures an interval
// between arrivals, so two requests sent exactly 5 s apart arrive closer
// whenever the first is held up on the way (network jitter, a busy
// machine) and the second earns a 429: the storm benchmark's pacing soak
// saw that with a 50 ms link on a loaded machine.
const ArrivalJitter = 500 * time.Millisecond

// DefaultPacerLimits returns IBKR's published limits (PROTOCOL.md §7),
// planning for the older, stricter 10 requests per second, with
// ArrivalJitter to spare on the per-endpoint intervals. The global limit
// needs none: IBKR's allows a burst of 10, the pacer none.
func DefaultPacerLimits() PacerLimits {
	every5s := rate.Every(5*time.Second + ArrivalJitter)
	return PacerLimits{
		Global:            10,
		LiveOrders:        every5s,
		Trades:            every5s,
		Tickle:            rate.Every(time.Second + ArrivalJitter),
		PortfolioAccounts: every5s,
	}
}

// PacerConfig configures a Pacer; zero fields take defaults. Now and Sleep
// exist so that tests can pace on a fake clock.
type PacerConfig struct {
	Limits PacerLimits
	Now    func() time.Time
	// Sleep waits d or until ctx ends, returning ctx's error in that case.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Pacer makes requests wait rather than earn a 429: IBKR's penalty box for a
// burst lasts 10-15 minutes and holds our whole IP, so every tenant would
// suffer. One Pacer must be shared by every user of one IBKR session
// (consumer and access token); it is safe for concurrent use.
type Pacer struct {
	// mu orders the clock readings with the reservations made at them: a
	// limiter handed a time older than one it has seen moves its clock back
	// and then gives out tokens twice. It also guards ends.
	mu     sync.Mutex
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	global *rate.Limiter
	rates  [len(pacedEndpoints)]rate.Limit
	// ends are made at an endpoint's first request: most sessions only
	// ever tickle and place orders, and a server keeps one Pacer per
	// account it serves.
	ends [len(pacedEndpoints)]*endpointPace
}

// pacedEndpoints are the endpoints with limits of their own, in
// PacerLimits' order.
var pacedEndpoints = [...]string{"/iserver/account/orders", "/iserver/account/trades", "/tickle", "/portfolio/accounts"}

// endpointPace is one endpoint's own limit and, for the slow ones, its
// turn (hold).
type endpointPace struct {
	lim  *rate.Limiter
	turn *turn
}

// NewPacer returns a Pacer with IBKR's default limits on the real clock.
func NewPacer() *Pacer { return NewPacerWith(PacerConfig{}) }

// NewPacerWith returns a Pacer configured by cfg.
func NewPacerWith(cfg PacerConfig) *Pacer {
	l := cfg.Limits
	if l == (PacerLimits{}) {
		l = DefaultPacerLimits()
	}
	p := &Pacer{now: cfg.Now, sleep: cfg.Sleep, rates: [...]rate.Limit{l.LiveOrders, l.Trades, l.Tickle, l.PortfolioAccounts}}
	if p.now == nil {
		p.now = time.Now
	}
	if p.sleep == nil {
		p.sleep = sleepCtx
	}
	if l.Global != 0 {
		p.global = newLimiter(l.Global)
	}
	return p
}

// newLimiter returns a limiter of r. Burst 1 spaces requests evenly, so no
// one-second window ever holds more than the limit's worth (a larger burst
// could double it at a window's edge).
func newLimiter(r rate.Limit) *rate.Limiter { return rate.NewLimiter(r, 1) }

// endpoint returns the pace of an endpoint with a limit of its own, made at
// its first request, or nil for any other endpoint. A limiter made then
// starts with its token, as one made with the Pacer would have by then.
func (p *Pacer) endpoint(path string) *endpointPace {
	i := slices.Index(pacedEndpoints[:], path)
	if i < 0 || p.rates[i] == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.ends[i]
	if e == nil {
		e = &endpointPace{lim: newLimiter(p.rates[i])}
		if p.rates[i] <= slowTurn {
			e.turn = newTurn(float64(p.rates[i]))
		}
		p.ends[i] = e
	}
	return e
}

// Wait blocks until a request to endpoint (the path below the base URL, no
// query) may go out, first under the endpoint's own limit, then under the
// global one. It returns early with an error when ctx ends or when the wait
// would pass ctx's deadline.
func (p *Pacer) Wait(ctx context.Context, endpoint string) error {
	if e := p.endpoint(endpoint); e != nil {
		if err := p.wait(ctx, e.lim); err != nil {
			return err
		}
	}
	if p.global != nil {
		return p.wait(ctx, p.global)
	}
	return nil
}

// wait takes one token from lim, sleeping for it when needed.
func (p *Pacer) wait(ctx context.Context, lim *rate.Limiter) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	now := p.now()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		p.mu.Unlock()
		return fmt.Errorf("request pacing: limit cannot be met")
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		p.mu.Unlock()
		return nil
	}
	if deadline, ok := ctx.Deadline(); ok && deadline.Sub(now) < d {
		r.CancelAt(now)
		p.mu.Unlock()
		return &paceDeadlineError{wait: d}
	}
	p.mu.Unlock()
	if err := p.sleep(ctx, d); err != nil {
		p.mu.Lock()
		r.CancelAt(p.now())
		p.mu.Unlock()
		return err
	}
	return nil
}

// paceDeadlineError says a request was not sent because pacing would have
// held it past the caller's deadline.
type paceDeadlineError struct{ wait time.Duration }

// Error says how long the wait would have been.
func (e *paceDeadlineError) Error() string {
	return fmt.Sprintf("request pacing needs a %s wait, past the deadline", e.wait)
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
