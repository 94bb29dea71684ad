// Package tick runs a worker's periodic step until its context ends.
package tick

import (
	"context"
	"time"
)

// Every calls step every d until ctx ends, the first time d from now. A
// step that outlasts d delays the next one rather than overlapping it (a
// time.Ticker drops the ticks it could not deliver), and Every returns
// only between steps: a worker stopped with its context is not cut off
// mid-step, as long as step itself heeds ctx.
func Every(ctx context.Context, d time.Duration, step func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			step()
		}
	}
}
