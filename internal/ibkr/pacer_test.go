package ibkr

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The pacer is tested on a fake clock: the waits it asks for are computed,
// not measured, so the tests are exact and instant.

func TestPacerWaits(t *testing.T) {
	tests := []struct {
		name string
		// endpoints are requested in order, with Wait, or with WaitLow (a
		// low-priority request, which takes only a slot free now and never
		// delays the order path) when prefixed "low:".
		endpoints []string
		want      []time.Duration
	}{
		{"global 10/s spaces requests by 100ms", []string{"/a", "/b", "/c"}, []time.Duration{100 * time.Millisecond, 100 * time.Millisecond}},
		{"live orders 1 per 5s and the jitter allowance", []string{"/iserver/account/orders", "/iserver/account/orders"}, []time.Duration{5*time.Second + ArrivalJitter}},
		{"trades 1 per 5s", []string{"/iserver/account/trades", "/iserver/account/trades", "/iserver/account/trades"}, []time.Duration{5*time.Second + ArrivalJitter, 5*time.Second + ArrivalJitter}},
		{"tickle 1/s", []string{"/tickle", "/tickle"}, []time.Duration{time.Second + ArrivalJitter}},
		{"orders list does not slow an order", []string{"/iserver/account/orders", "/iserver/account/DU1/orders"}, []time.Duration{100 * time.Millisecond}},
		{"endpoint limit first, then global", []string{"/a", "/iserver/account/orders", "/iserver/account/orders", "/b"}, []time.Duration{100 * time.Millisecond, 4900*time.Millisecond + ArrivalJitter, 100 * time.Millisecond}},
		{"low on an idle pacer goes at once", []string{"low:/a"}, nil},
		{"low waits for the slot a high one took", []string{"/a", "low:/b"}, []time.Duration{100 * time.Millisecond}},
		{"low keeps the endpoint's limit", []string{"low:/iserver/account/orders", "low:/iserver/account/orders"}, []time.Duration{5*time.Second + ArrivalJitter}},
		{"low after an order list call waits 5s", []string{"/iserver/account/orders", "low:/iserver/account/orders"}, []time.Duration{5*time.Second + ArrivalJitter}},
		{"high after low is paced like after any request", []string{"low:/a", "/b"}, []time.Duration{100 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{now: time.Unix(1714489460, 0)}
			p := NewPacerWith(PacerConfig{Now: clk.Now, Sleep: clk.Sleep})
			for _, e := range tc.endpoints {
				wait := p.Wait
				if low, ok := strings.CutPrefix(e, "low:"); ok {
					e, wait = low, p.WaitLow
				}
				if err := wait(context.Background(), e); err != nil {
					t.Fatalf("%s: %v", e, err)
				}
			}
			if diff := cmp.Diff(tc.want, clk.Sleeps(), approxDuration); diff != "" {
				t.Errorf("sleeps (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPacerDeadlineAndCancel(t *testing.T) {
	clk := &fakeClock{now: time.Now()}
	p := NewPacerWith(PacerConfig{Now: clk.Now, Sleep: clk.Sleep})
	if err := p.Wait(context.Background(), "/iserver/account/orders"); err != nil {
		t.Fatal(err)
	}
	var pd *paceDeadlineError
	// The next slot is 5 s after the first; a deadline sooner than that
	// fails at once and gives the slot back.
	ctx2, cancel2 := context.WithDeadline(context.Background(), clk.Now().Add(2*time.Second))
	defer cancel2()
	if err := p.Wait(ctx2, "/iserver/account/orders"); !errors.As(err, &pd) {
		t.Fatalf("err = %v, want a deadline refusal", err)
	}
	if len(clk.Sleeps()) != 0 {
		t.Errorf("slept %v", clk.Sleeps())
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if err := p.Wait(cctx, "/a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestPacerConcurrentUse(t *testing.T) {
	clk := &fakeClock{now: time.Unix(0, 0)}
	p := NewPacerWith(PacerConfig{Now: clk.Now, Sleep: clk.Sleep})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if err := p.Wait(context.Background(), "/tickle"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	// 40 tickles at 1/s: whatever the interleaving, they cannot all fit in
	// less than 39 s of fake time (less a millisecond for the limiter's
	// floating-point token arithmetic).
	if got := clk.Now().Sub(time.Unix(0, 0)); got < 39*time.Second-time.Millisecond {
		t.Errorf("40 tickles took %s of fake time", got)
	}
}

// TestSessionPacing: a Session waits before the second live-orders call
// instead of earning a 429, and a deadline that the wait would pass fails
// without sending anything.
func TestSessionPacing(t *testing.T) {
	f := newFake(t)
	f.respond("GET /iserver/account/orders", 200, `{"orders":[]}`)
	f.respond("POST /tickle", 200, `{"session":"x","iserver":{"authStatus":{"authenticated":true,"connected":true}}}`)
	s, clk := vectorSession(t, f)
	ctx := context.Background()
	for range 2 {
		if _, err := s.LiveOrders(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Tickle(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]time.Duration{5*time.Second + ArrivalJitter, 100 * time.Millisecond}, clk.Sleeps(), approxDuration); diff != "" {
		t.Errorf("sleeps (-want +got):\n%s", diff)
	}
	// Move the fake clock to real time (a context deadline runs on the real
	// clock); the next live-orders slot is then far in the past, so take it
	// first. The slot after is 5.5 s away and a 1 s deadline must refuse.
	clk.mu.Lock()
	clk.now = time.Now()
	clk.mu.Unlock()
	if _, err := s.LiveOrders(ctx); err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithDeadline(ctx, clk.Now().Add(time.Second))
	defer cancel()
	_, err := s.LiveOrders(dctx)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindRateLimited || e.RetryAfter != 5*time.Second+ArrivalJitter {
		t.Fatalf("err = %#v", err)
	}
	if n := len(f.recorded()); n != 4 {
		t.Errorf("%d requests reached the server, want 4", n)
	}
	// A sleep cut short by cancellation sends nothing either.
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	if _, err := s.LiveOrders(cctx); KindOf(err) != KindUnavailable || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if n := len(f.recorded()); n != 4 {
		t.Errorf("%d requests reached the server, want 4", n)
	}
}

// approxDuration forgives x/time/rate's float rounding (4.899999999s).
var approxDuration = cmp.Comparer(func(a, b time.Duration) bool {
	d := a - b
	return d > -time.Microsecond && d < time.Microsecond
})
