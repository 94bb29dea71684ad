package tick_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/tick"
)

// Every steps repeatedly, never before its first period, never twice at
// once, and not after it has returned.
func TestEveryStepsUntilTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	var steps, inStep, overlaps atomic.Int32
	var first atomic.Int64
	enough := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick.Every(ctx, 5*time.Millisecond, func() {
			if inStep.Add(1) > 1 {
				overlaps.Add(1)
			}
			defer inStep.Add(-1)
			first.CompareAndSwap(0, int64(time.Since(start)))
			if steps.Add(1) == 3 {
				close(enough)
			}
			time.Sleep(7 * time.Millisecond) // longer than the period
		})
	}()
	select {
	case <-enough:
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not step three times in 10 s")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return after its context ended")
	}
	after := steps.Load()
	time.Sleep(30 * time.Millisecond)
	if got := steps.Load(); got != after {
		t.Errorf("%d steps after Every returned", got-after)
	}
	if overlaps.Load() > 0 {
		t.Errorf("%d steps overlapped a running one", overlaps.Load())
	}
	if f := time.Duration(first.Load()); f < 5*time.Millisecond {
		t.Errorf("the first step ran %v after the start, before the first period", f)
	}
}

// Every returns at once for a context that has already ended, without a
// step.
func TestEveryWithAnEndedContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stepped := false
	tick.Every(ctx, time.Hour, func() { stepped = true })
	if stepped {
		t.Error("Every stepped with an ended context")
	}
}
