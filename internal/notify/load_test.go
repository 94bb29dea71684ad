package notify_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/notify"
)

// TestBurstOfAThousandEvents enqueues 1,000 events at once, each in its own
// committed transaction from eight writers, and waits until a local
// receiver has every one, exactly once per event id, with two replicas'
// dispatchers and workers taking them from one outbox and queue. It logs
// the throughput (scripts/BENCHMARKS.md quotes it).
func TestBurstOfAThousandEvents(t *testing.T) {
	const events, writers = 1000, 8
	r := newRig(t, func(c *notify.Config) { c.SMTPURL = "" })
	r.startReplica(t)
	rc := newReceiver(t)
	r.endpoint(t, r.user, rc, notify.OrderFilled)

	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < events/writers; i++ {
				err := pgx.BeginFunc(context.Background(), r.pool, func(tx pgx.Tx) error {
					_, err := r.svc.Enqueue(context.Background(), tx, notify.Event{UserID: r.user, Type: notify.OrderFilled, Data: fill})
					return err
				})
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	enqueued := time.Since(start)
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	hits := rc.waitHits(t, events, 2*time.Minute)
	delivered := time.Since(start)
	seen := map[string]bool{}
	for _, h := range hits {
		if seen[h.id] {
			t.Errorf("event %s delivered twice", h.id)
		}
		seen[h.id] = true
	}
	if len(seen) != events {
		t.Errorf("%d distinct events delivered, want %d", len(seen), events)
	}
	var left int
	if err := r.pool.QueryRow(context.Background(), `SELECT count(*) FROM notification_outbox`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d rows left in the outbox (%v), want none", left, err)
	}
	t.Logf("%d events: enqueued in %v (%.0f/s), all delivered in %v (%.0f/s)", events,
		enqueued.Round(time.Millisecond), float64(events)/enqueued.Seconds(),
		delivered.Round(time.Millisecond), float64(events)/delivered.Seconds())
}
