package notify_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/notify"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/seal"
)

// TestPeriodicOnceAmongReplicas: two replicas on one database, each with
// the same periodic task, run it once per period between them, not once
// each.
func TestPeriodicOnceAmongReplicas(t *testing.T) {
	pool := pgtest.Pool(t)
	const every = time.Second
	var runs atomic.Int32
	var mu sync.Mutex
	by := map[int]int{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 2 {
		svc, err := notify.New(notify.Config{Pool: pool, Ring: seal.RandomRing("k1"),
			Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), PollInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		err = svc.AddPeriodic("tick", every, func(context.Context) error {
			runs.Add(1)
			mu.Lock()
			by[i]++
			mu.Unlock()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.AddPeriodic("tick", every, func(context.Context) error { return nil }); err == nil {
			t.Error("the same task added twice")
		}
		wg.Add(1)
		go func() { defer wg.Done(); svc.Run(ctx) }()
	}
	deadline := time.Now().Add(20 * time.Second)
	for runs.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if runs.Load() == 0 {
		cancel()
		wg.Wait()
		t.Fatal("the periodic task never ran")
	}
	start, first := time.Now(), runs.Load()
	time.Sleep(4*every + every/2)
	n := runs.Load() - first
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	if max := int32(elapsed/every) + 1; n > max || n < 2 {
		t.Errorf("%d runs in %v after the first, want 2 to %d (one per period among both replicas; by replica %v)", n, elapsed, max, by)
	}
}

// jobMark is the context key TestJobContextReachesEveryJob marks with.
type jobMark struct{}

// TestJobContextReachesEveryJob: a job runs with the context that
// Config.JobContext makes (serve marks every job as one that never takes a
// user's IBKR session back), and without it the job's context is river's.
func TestJobContextReachesEveryJob(t *testing.T) {
	for _, mark := range []bool{true, false} {
		pool := pgtest.Pool(t)
		cfg := notify.Config{Pool: pool, Ring: seal.RandomRing("k1"),
			Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), PollInterval: 50 * time.Millisecond}
		if mark {
			cfg.JobContext = func(ctx context.Context) context.Context { return context.WithValue(ctx, jobMark{}, "marked") }
		}
		svc, err := notify.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		seen := make(chan any, 1)
		if err := svc.AddPeriodic("mark", time.Hour, func(ctx context.Context) error {
			select {
			case seen <- ctx.Value(jobMark{}):
			default:
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); svc.Run(ctx) }()
		select {
		case got := <-seen:
			if want := map[bool]any{true: "marked", false: nil}[mark]; got != want {
				t.Errorf("with JobContext %v: the job's context carries %v, want %v", mark, got, want)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("with JobContext %v: the job never ran", mark)
		}
		cancel()
		<-done
	}
}
