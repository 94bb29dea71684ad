package ibkr

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestPacerWaitLowYieldsToQueuedOrders: order-path requests already queued
// for future slots keep them; the low-priority request goes after all of
// them, and a refused low request leaves no reservation behind.
func TestPacerWaitLowYieldsToQueuedOrders(t *testing.T) {
	clk := &fakeClock{now: time.Now()}
	p := NewPacerWith(PacerConfig{Now: clk.Now, Sleep: clk.Sleep})
	// Three order-path requests arrive together: slots now, +100ms, +200ms
	// (Wait reserves them before sleeping).
	now := clk.Now()
	for range 3 {
		p.global.ReserveN(now, 1)
	}
	// A low request whose deadline is 250ms away cannot go before 300ms.
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(250*time.Millisecond))
	defer cancel()
	var pd *paceDeadlineError
	if err := p.WaitLow(ctx, "/iserver/marketdata/snapshot"); !errors.As(err, &pd) {
		t.Fatalf("WaitLow = %v, want a deadline refusal", err)
	}
	if got, want := pd.wait, 300*time.Millisecond; got < want-time.Millisecond || got > want+time.Millisecond {
		t.Errorf("wait = %s, want %s", got, want)
	}
	// It held nothing: the next order-path request gets the 300ms slot,
	// not a later one.
	if r := p.global.ReserveN(now, 1); r.DelayFrom(now) > 300*time.Millisecond+time.Millisecond {
		t.Errorf("order after a refused low request waits %s", r.DelayFrom(now))
	}
	// A cancelled context is reported as such.
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if err := p.WaitLow(cctx, "/a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitLow = %v, want context.Canceled", err)
	}
}
