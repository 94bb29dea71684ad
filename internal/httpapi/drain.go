package httpapi

import (
	"context"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/trading"
)

// drainer tells handlers that the shutdown grace is about to end: what
// they still wait for will not come before the process exits, so they
// answer now with what they have. The zero value is ready to use.
type drainer struct {
	mu     sync.Mutex
	ch     chan struct{}
	closed bool
}

// done returns a channel closed when draining starts.
func (d *drainer) done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	return d.ch
}

// start begins draining; later calls do nothing.
func (d *drainer) start() {
	d.done()
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		close(d.ch)
		d.closed = true
	}
}

// drainMargin is how long before the grace deadline handlers are told to
// answer: time to read the row and write the answer, and for
// http.Server.Shutdown, which looks for idle connections only every
// 500 ms, to see that they are done — 2 s, or half a shorter grace.
func drainMargin(grace time.Duration) time.Duration {
	return min(grace/2, 2*time.Second)
}

// drainRetryAfter is what a confirm drained before its row was written is
// told to wait: about as long as a restart takes.
const drainRetryAfter = 5 * time.Second

// confirmOrDrain runs the confirm and returns its result; when the server
// drains first (SIGTERM while IBKR is slow), it returns the confirmation
// the request wrote ahead instead — pending, so the handler answers 202
// and reconciliation settles the order — or, when the confirm had not yet
// written its row, a 503 telling the client to retry with the same
// Idempotency-Key (which then finds whatever this request did).
func (s *Server) confirmOrDrain(c echo.Context, userID, signalID, key string, side trading.Side) (trading.Confirmation, bool, error) {
	type result struct {
		conf   trading.Confirmation
		replay bool
		err    error
	}
	ctx := c.Request().Context()
	done := make(chan result, 1)
	go func() {
		conf, replay, err := s.trading.Confirm(ctx, userID, signalID, key, side)
		done <- result{conf, replay, err}
	}()
	select {
	case r := <-done:
		return r.conf, r.replay, r.err
	case <-s.drain.done():
	}
	// The request's context may end with the server: read with one of its
	// own, briefly.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	conf, err := s.trading.ConfirmationByKey(rctx, userID, key)
	if err != nil {
		if e := errs.As(err); e == nil || e.Code == errs.NotFound {
			return trading.Confirmation{}, false, &errs.Error{Code: errs.Unavailable, RetryAfter: drainRetryAfter, Err: err,
				Message: "the server is restarting; send the confirm again with the same Idempotency-Key"}
		}
		return trading.Confirmation{}, false, err
	}
	s.reqLog(c).Warn().Str("confirmation", conf.ID).Str("status", string(conf.Status)).
		Msg("shutting down: a confirm in flight is answered with its confirmation; reconciliation settles the order")
	return conf, false, nil
}
