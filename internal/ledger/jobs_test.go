package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/ledger"
	"github.com/ordertune/ordertune/internal/notify"
	"github.com/ordertune/ordertune/internal/seal"
	"github.com/ordertune/ordertune/internal/trading"
)

// Two replicas run the queue with the ledger's jobs: the leader's sweep
// at start queues the tenant's import once, one of them runs it, and the
// fill that polling never saw is recovered without anyone asking.
func TestScheduledImportTwoReplicas(t *testing.T) {
	w := newWorld(t, fastSim())
	user := w.subscriber(t, "", "50")
	entry := w.confirm(t, user, w.signal(t, "AMZN", "IV", "entry"))
	w.auction(t, true, map[string]float64{"AMZN": 222.22})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{}, 2)
	for i := 0; i < 2; i++ {
		ns, err := notify.New(notify.Config{Pool: w.pool, Ring: seal.RandomRing("notify"), PollInterval: 50 * time.Millisecond,
			AddWorkers: w.ledger.Register, PeriodicJobs: w.ledger.PeriodicJobs()})
		if err != nil {
			t.Fatal(err)
		}
		go func() { ns.Run(ctx); done <- struct{}{} }()
	}
	defer func() { cancel(); <-done; <-done }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		c := w.confirmation(t, user, entry.ID)
		if c.Status == trading.StatusFilled && c.AvgFillPrice != nil && *c.AvgFillPrice == "222.22" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scheduled import did not recover the fill: %s, %s filled", c.Status, c.FilledQuantity)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var sweeps, imports, stored int
	err := w.pool.QueryRow(context.Background(), `
		SELECT count(*) FILTER (WHERE kind = $1), count(*) FILTER (WHERE kind = $2), (SELECT count(*) FROM executions)
		FROM river_job`, ledger.SweepArgs{}.Kind(), ledger.ImportArgs{}.Kind()).Scan(&sweeps, &imports, &stored)
	if err != nil {
		t.Fatal(err)
	}
	if sweeps != 1 || imports != 1 || stored != 1 {
		t.Errorf("%d sweeps, %d imports, %d executions; want one of each", sweeps, imports, stored)
	}
}
