package ibkr

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPacerWaitLow checks, on a fake clock, that a low-priority request
// takes only a slot that is free now and never delays the order path.
func TestPacerWaitLow(t *testing.T) {
	tests := []struct {
		name string
		// steps are "high:/path" (Wait) or "low:/path" (WaitLow), in order.
		steps []string
		want  []time.Duration
	}{
		{"low on an idle pacer goes at once", []string{"low:/a"}, nil},
		{"low waits for the slot a high one took", []string{"high:/a", "low:/b"}, []time.Duration{100 * time.Millisecond}},
		{"low keeps the endpoint's limit", []string{"low:/iserver/account/orders", "low:/iserver/account/orders"}, []time.Duration{5*time.Second + ArrivalJitter}},
		{"low after an order list call waits 5s", []string{"high:/iserver/account/orders", "low:/iserver/account/orders"}, []time.Duration{5*time.Second + ArrivalJitter}},
		{"high after low is paced like after any request", []string{"low:/a", "high:/b"}, []time.Duration{100 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{now: time.Unix(1714489460, 0)}
			p := NewPacerWith(PacerConfig{Now: clk.Now, Sleep: clk.Sleep})
			for _, s := range tc.steps {
				var err error
				if e, ok := cutPrefix(s, "high:"); ok {
					err = p.Wait(context.Background(), e)
				} else if e, ok := cutPrefix(s, "low:"); ok {
					err = p.WaitLow(context.Background(), e)
				}
				if err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
			if diff := cmp.Diff(tc.want, clk.Sleeps(), approxDuration); diff != "" {
				t.Errorf("sleeps (-want +got):\n%s", diff)
			}
		})
	}
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

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
