package clocktest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/clocktest"
)

func TestClock(t *testing.T) {
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		move func(*clocktest.Clock)
		want time.Time
	}{
		{"unmoved", func(*clocktest.Clock) {}, start},
		{"advanced", func(c *clocktest.Clock) { c.Advance(90 * time.Second) }, start.Add(90 * time.Second)},
		{"advanced twice", func(c *clocktest.Clock) { c.Advance(time.Hour); c.Advance(-time.Minute) }, start.Add(59 * time.Minute)},
		{"set", func(c *clocktest.Clock) { c.Advance(time.Hour); c.Set(start.Add(-time.Hour)) }, start.Add(-time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clocktest.New(start)
			tt.move(c)
			if diff := cmp.Diff(tt.want, c.Now()); diff != "" {
				t.Errorf("Now() (-want +got):\n%s", diff)
			}
		})
	}
}

// TestClockConcurrent is for the race detector: servers read the clock
// while the test moves it.
func TestClockConcurrent(t *testing.T) {
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	c := clocktest.New(start)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(2)
		go func() { defer wg.Done(); c.Advance(time.Second) }()
		go func() { defer wg.Done(); _ = c.Now() }()
	}
	wg.Wait()
	if diff := cmp.Diff(start.Add(4*time.Second), c.Now()); diff != "" {
		t.Errorf("Now() after four concurrent advances (-want +got):\n%s", diff)
	}
}
