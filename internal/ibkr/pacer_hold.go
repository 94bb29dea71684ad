package ibkr

import (
	"context"
	"time"
)

// turn serializes the requests to one slowly paced endpoint (the orders
// and executions lists, the portfolio accounts: 1 per 5 s; the tickle) and
// spaces each from the end of the one before.
//
// The endpoint's rate limiter alone spaces requests from when they were
// let go, but IBKR measures when they arrive: a request held up between
// the two (the global limit, a busy machine, a slow connection) arrives
// late, the next one on time, and IBKR answers the next one 429. Spacing
// from the previous answer, which came after IBKR received that request,
// can never be too close.
type turn struct {
	ch    chan struct{} // one token: whose turn it is
	every time.Duration
	after time.Time // the next request's earliest start; guarded by ch
}

// slowTurn is the slowest rate (requests per second) whose endpoints take
// turns.
const slowTurn = 1

// newTurn returns a turn for an endpoint paced at r requests per second.
func newTurn(r float64) *turn {
	return &turn{ch: make(chan struct{}, 1), every: time.Duration(float64(time.Second) / r)}
}

// hold waits for endpoint's turn and until its spacing since the previous
// answer has passed; release ends the turn once the answer has arrived. An
// endpoint without a turn returns at once. Like Wait, hold fails at once
// when the spacing would pass ctx's deadline.
func (p *Pacer) hold(ctx context.Context, endpoint string) (release func(), err error) {
	e := p.endpoint(endpoint)
	if e == nil || e.turn == nil {
		return func() {}, nil
	}
	t := e.turn
	select {
	case t.ch <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	now := p.now()
	if d := t.after.Sub(now); d > 0 {
		if deadline, ok := ctx.Deadline(); ok && deadline.Sub(now) < d {
			<-t.ch
			return nil, &paceDeadlineError{wait: d}
		}
		if err := p.sleep(ctx, d); err != nil {
			<-t.ch
			return nil, err
		}
	}
	return func() {
		t.after = p.now().Add(t.every)
		<-t.ch
	}, nil
}
