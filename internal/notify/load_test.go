package notify_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/notify"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/seal"
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

// Backlog counts the events waiting in the outbox and the oldest's age,
// which the metrics export: here no dispatcher runs, so they wait.
func TestBacklogOfTheOutbox(t *testing.T) {
	pool := pgtest.Pool(t)
	svc, err := notify.New(notify.Config{Pool: pool, Ring: seal.RandomRing("k1"), SMTPURL: "smtp://127.0.0.1:1", MailFrom: "alerts@ordertune.test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if n, oldest, err := svc.Backlog(ctx); err != nil || n != 0 || oldest != 0 {
		t.Fatalf("empty outbox: Backlog = %d, %v, %v; want 0, 0", n, oldest, err)
	}
	user, _ := newUser(t, pool)
	for range 3 {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := svc.Enqueue(ctx, tx, notify.Event{UserID: user, Type: notify.OrderFilled, Data: fill})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE notification_outbox SET created_at = now() - interval '90 seconds'
		WHERE event_id = (SELECT event_id FROM notification_outbox ORDER BY created_at LIMIT 1)`); err != nil {
		t.Fatal(err)
	}
	n, oldest, err := svc.Backlog(ctx)
	if err != nil || n != 3 || oldest < 90*time.Second || oldest > 100*time.Second {
		t.Fatalf("Backlog = %d, %v, %v; want 3 events, the oldest 90 s old", n, oldest, err)
	}
}
