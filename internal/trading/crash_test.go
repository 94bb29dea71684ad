package trading_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/postgres/localpg"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

// TestCrashDuringConfirms kills PostgreSQL the way a power cut would
// (immediate shutdown) at a random moment while 50 confirms run, restarts
// it, lets reconciliation run, and checks, for 10 rounds:
//   - no order at the simulator lacks a committed confirmation (write ahead),
//   - no cOID reached the simulator twice and no confirmation has two orders,
//   - every confirmation is settled (not pending; unknown only with the
//     outcome-unknown message, and then without an order), and its status
//     agrees with the simulator: an order exists exactly for the rows that
//     are neither failed nor unknown.
func TestCrashDuringConfirms(t *testing.T) {
	ctx := context.Background()
	// A cluster of its own, durable (no Fast mode): an acknowledged commit
	// must survive the crash, or the write-ahead rule means nothing.
	var opts localpg.Options
	cluster, url := pgtest.OwnCluster(t, opts)
	t.Cleanup(func() { cluster.Stop() }) // the last restarted one
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	env := tradetest.NewEnv(t, fastSim(), tradetest.SimBrokerOptions{Limits: tradetest.FastLimits()})
	svc, err := trading.New(trading.Config{Pool: pool, Broker: env.Broker, PendingGrace: 500 * time.Millisecond,
		ReconcileInterval: 20 * time.Millisecond, OrderTimeout: 5 * time.Second, ReconcileBackoffMax: 100 * time.Millisecond,
		OutcomeUnknownAfter: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{env: env, pool: pool, svc: svc, admin: tradetest.NewUser(t, pool, "admin")}
	const users, perUser = 5, 10 // 50 confirms a round
	var subs []string
	for range users {
		subs = append(subs, w.subscriber(t, trading.SizeShares, "2"))
	}
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	t.Logf("seed %d", seed)

	for round := 1; round <= 10; round++ {
		var signals []trading.Signal
		for range perUser {
			signals = append(signals, w.signal(t, nil))
		}
		var wg sync.WaitGroup
		var errMu sync.Mutex
		errCount := map[string]int{}
		start := make(chan struct{})
		i := 0
		for _, g := range signals {
			for _, u := range subs {
				// Spread the 50 confirms over about 150 ms, so that the
				// crash finds them at every step of the flow.
				delay := time.Duration(i) * 3 * time.Millisecond
				i++
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					time.Sleep(delay)
					// Errors are expected while the database is down.
					_, _, err := svc.Confirm(ctx, u, g.ID, fmt.Sprintf("r%d-%s", round, g.ID), "BUY")
					if err != nil {
						errMu.Lock()
						errCount[errText(err)]++
						errMu.Unlock()
					}
				}()
			}
		}
		close(start)
		time.Sleep(time.Duration(20+rng.IntN(130)) * time.Millisecond)
		if err := cluster.Crash(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		if cluster, err = cluster.Restart(ctx, opts); err != nil {
			t.Fatalf("round %d: restart: %v", round, err)
		}
		wg.Wait()
		failures := 0
		for _, n := range errCount {
			failures += n
		}
		settleAll(t, w)
		checkCrashInvariants(t, w, round, failures)
	}
}

// settleAll runs reconciliation until nothing is pending and every unknown
// row says the outcome is unknown.
func settleAll(t *testing.T, w *world) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var open int
		err := w.pool.QueryRow(ctx, `SELECT count(*) FROM confirmations
			WHERE status = 'pending' OR status = 'unknown' AND error_message IS DISTINCT FROM $1`, trading.OutcomeUnknownMessage).Scan(&open)
		if err == nil && open == 0 {
			return
		}
		_, _ = w.svc.Reconcile(ctx)
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("confirmations still pending or unknown 30 s after the restart")
}

func checkCrashInvariants(t *testing.T, w *world, round, failures int) {
	t.Helper()
	rows, err := w.pool.Query(context.Background(), `SELECT id::text, status, user_id::text, signal_id::text, coalesce(error_message, '') FROM confirmations`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		status                trading.Status
		user, signal, message string
	}
	db := map[string]row{}
	live := map[string]int{}
	for rows.Next() {
		var id string
		var r row
		if err := rows.Scan(&id, &r.status, &r.user, &r.signal, &r.message); err != nil {
			t.Fatal(err)
		}
		db[id] = r
		if r.status != trading.StatusFailed && r.status != trading.StatusCancelled {
			live[r.user+"/"+r.signal]++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	orders := map[string]int{}
	for _, o := range w.env.Orders(t) {
		orders[o.COID]++
		if _, ok := db[o.COID]; !ok {
			t.Errorf("round %d: order %s at the simulator has no committed confirmation", round, o.COID)
		}
	}
	for coid, n := range orders {
		if n > 1 {
			t.Errorf("round %d: cOID %s reached the simulator %d times", round, coid, n)
		}
	}
	for k, n := range live {
		if n > 1 {
			t.Errorf("round %d: %d live confirmations for %s", round, n, k)
		}
	}
	counts := map[trading.Status]int{}
	for id, r := range db {
		counts[r.status]++
		switch {
		case r.status == trading.StatusPending || r.status == trading.StatusUnknown && r.message != trading.OutcomeUnknownMessage:
			t.Errorf("round %d: confirmation %s not settled: %s", round, id, r.status)
		case (r.status == trading.StatusFailed || r.status == trading.StatusUnknown) && orders[id] > 0:
			t.Errorf("round %d: confirmation %s is %s but its order is at the simulator", round, id, r.status)
		case r.status != trading.StatusFailed && r.status != trading.StatusUnknown && orders[id] == 0:
			t.Errorf("round %d: confirmation %s is %s but the simulator has no such order", round, id, r.status)
		}
	}
	var byReconciliation int
	if err := w.pool.QueryRow(context.Background(), `SELECT count(DISTINCT confirmation_id) FROM confirmation_events
		WHERE message LIKE 'working at IBKR%' OR message LIKE 'not found at IBKR%'`).Scan(&byReconciliation); err != nil {
		t.Fatal(err)
	}
	t.Logf("after round %d: %d confirm calls failed this round; in total %d rows %v, %d orders, %d rows settled by reconciliation",
		round, failures, len(db), counts, len(orders), byReconciliation)
}

func errText(err error) string { return err.Error() }
