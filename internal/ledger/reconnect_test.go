package ledger_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ledger"
	"github.com/ordertune/ordertune/internal/notify"
	"github.com/ordertune/ordertune/internal/seal"
	"github.com/ordertune/ordertune/internal/trading"
)

// reconnectJobs counts the import-after-reconnect jobs of user per mode
// and state.
func (w *world) reconnectJobs(t *testing.T, user string) map[string]int {
	t.Helper()
	rows, err := w.pool.Query(context.Background(), `
		SELECT args->>'mode', state::text, count(*) FROM river_job
		WHERE kind = $1 AND args->>'user_id' = $2 GROUP BY 1, 2`, ledger.ReconnectArgs{}.Kind(), user)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var mode, state string
		var n int
		if err := rows.Scan(&mode, &state, &n); err != nil {
			t.Fatal(err)
		}
		out[mode+" "+state] += n
	}
	return out
}

// reconnectQueue is a ledger whose jobs run on a river queue of their own
// without periodic jobs (nothing but a reconnect imports), with
// ReconnectDelay delay and Config.Serves serves; run ns.Run and
// ls.RunReconnects to start it.
func (w *world) reconnectQueue(t *testing.T, delay time.Duration, serves func(string) bool) (*ledger.Jobs, *notify.Service, *ledger.Service) {
	t.Helper()
	jobs := &ledger.Jobs{}
	ns, err := notify.New(notify.Config{Pool: w.pool, Ring: seal.RandomRing("notify"), PollInterval: 50 * time.Millisecond,
		AddWorkers: jobs.Register})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := ledger.New(ledger.Config{Pool: w.pool, Broker: w.env.Broker, RecordFills: w.trade.RecordFills,
		Queue: ns.Queue(), ReconnectDelay: delay, Serves: serves})
	if err != nil {
		t.Fatal(err)
	}
	jobs.Bind(ls)
	return jobs, ns, ls
}

// A fill that order polling missed is recovered as soon as the tenant's
// IBKR session is re-established, without waiting for a sweep (the queue
// here has none): a burst of 25 reconnects on two replicas makes one
// import job, a reconnect of a mode that is not the active one imports
// nothing, a tenant without orders gets no job, and a reconnect after the
// import ran makes a new one.
func TestImportAfterReconnect(t *testing.T) {
	w := newWorld(t, fastSim())
	user := w.subscriber(t, "", "40")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	acct, err := w.env.Broker.ActiveAccount(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	other := trading.Live
	if acct.Mode == trading.Live {
		other = trading.Paper
	}

	w.env.Fault(t, ibkrsim.Fault{Kind: ibkrsim.FaultHideFills})
	entry := w.confirm(t, user, w.signal(t, "MSFT", "IV", "entry"))
	w.auction(t, true, map[string]float64{"MSFT": 411.11})
	for range 5 {
		time.Sleep(25 * time.Millisecond)
		if _, err := w.trade.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if c := w.confirmation(t, user, entry.ID); c.Status != trading.StatusSubmitted {
		t.Fatalf("with the fill hidden, polling says %s; the fault did not hide it", c.Status)
	}

	// The ledger's jobs on a queue without periodic jobs: nothing but a
	// reconnect imports.
	jobs, ns, ls := w.reconnectQueue(t, 300*time.Millisecond, nil)
	// A second replica's ledger, queueing on its own client: the job's
	// uniqueness is the database's, not one process's.
	ns2, err := notify.New(notify.Config{Pool: w.pool, Ring: seal.RandomRing("notify"), AddWorkers: (&ledger.Jobs{}).Register})
	if err != nil {
		t.Fatal(err)
	}
	ls2, err := ledger.New(ledger.Config{Pool: w.pool, Broker: w.env.Broker, Queue: ns2.Queue(), ReconnectDelay: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, run := range []func(context.Context){ns.Run, ls.RunReconnects, ls2.RunReconnects} {
		wg.Add(1)
		go func() { defer wg.Done(); run(ctx) }()
	}
	defer func() { cancel(); wg.Wait() }()
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for %s; jobs %v", what, w.reconnectJobs(t, user))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The other mode's session came back: that is not the active account.
	jobs.Reconnected(user, other, "new")
	wait("the other mode's job", func() bool { return w.reconnectJobs(t, user)[string(other)+" completed"] == 1 })
	var stored int
	if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM executions WHERE user_id = $1`, user).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 0 {
		t.Errorf("a reconnect of the inactive mode imported %d executions", stored)
	}

	// A tenant without orders reconnecting has nothing polling missed.
	idle := w.subscriber(t, "", "1")
	jobs.Reconnected(idle, acct.Mode, "new")

	var burst sync.WaitGroup
	for i := range 25 {
		burst.Add(1)
		go func() {
			defer burst.Done()
			if i%2 == 0 {
				jobs.Reconnected(user, acct.Mode, "repair")
			} else {
				ls2.Reconnected(user, acct.Mode, "repair")
			}
		}()
	}
	burst.Wait()
	wait("the fill to be recovered", func() bool {
		c := w.confirmation(t, user, entry.ID)
		return c.Status == trading.StatusFilled && c.AvgFillPrice != nil && *c.AvgFillPrice == "411.11" && c.FilledQuantity == "40"
	})
	wait("the import job to complete", func() bool { return w.reconnectJobs(t, user)[string(acct.Mode)+" completed"] == 1 })
	if got, want := w.reconnectJobs(t, user), map[string]int{string(other) + " completed": 1, string(acct.Mode) + " completed": 1}; len(got) != len(want) ||
		got[string(acct.Mode)+" completed"] != 1 || got[string(other)+" completed"] != 1 {
		t.Errorf("jobs after the burst = %v, want %v", got, want)
	}

	if got := w.reconnectJobs(t, idle); len(got) != 0 {
		t.Errorf("the tenant without orders got import jobs %v", got)
	}

	// A later reconnect imports again.
	jobs.Reconnected(user, acct.Mode, "brokerage")
	wait("the next reconnect's job", func() bool { return w.reconnectJobs(t, user)[string(acct.Mode)+" completed"] == 2 })
}

// An import after a reconnect goes back to the queue while this replica
// does not hold the tenant's session, for the owner's worker to take; when
// no replica takes it (the session went away everywhere), it gives up
// after a bounded number of hand-overs and leaves the tenant to the next
// sweep, instead of circling the queue for ever. river's snooze leaves the
// job's attempt count as it was: the hand-overs are counted by its snoozes.
func TestReconnectImportGivesUpWhereNoReplicaServes(t *testing.T) {
	w := newWorld(t, fastSim())
	user := w.subscriber(t, "", "5")
	ctx, cancel := context.WithCancel(context.Background())
	acct, err := w.env.Broker.ActiveAccount(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	w.confirm(t, user, w.signal(t, "MSFT", "IV", "entry"))

	jobs, ns, ls := w.reconnectQueue(t, 100*time.Millisecond, func(string) bool { return false })
	var wg sync.WaitGroup
	for _, run := range []func(context.Context){ns.Run, ls.RunReconnects} {
		wg.Add(1)
		go func() { defer wg.Done(); run(ctx) }()
	}
	defer func() { cancel(); wg.Wait() }()

	jobs.Reconnected(user, acct.Mode, "repair")
	deadline := time.Now().Add(60 * time.Second)
	for w.reconnectJobs(t, user)[string(acct.Mode)+" completed"] != 1 {
		if time.Now().After(deadline) {
			var snoozes int
			_ = w.pool.QueryRow(ctx, `SELECT coalesce(max((metadata->>'snoozes')::int), 0) FROM river_job WHERE kind = $1`,
				ledger.ReconnectArgs{}.Kind()).Scan(&snoozes)
			t.Fatalf("the import of a tenant no replica serves never ended: jobs %v after %d hand-overs", w.reconnectJobs(t, user), snoozes)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var stored int
	if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM executions WHERE user_id = $1`, user).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 0 {
		t.Errorf("an import ran on a replica that does not serve the tenant: %d executions stored", stored)
	}
}
