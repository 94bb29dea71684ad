package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ledger"
	"github.com/ordertune/ordertune/internal/logging/logtest"
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

// servedElsewhere is the broker of a replica that does not hold the
// tenant's session lease: the session cache refuses every call with
// trading.ErrServedElsewhere before asking IBKR (broker's
// TestOnlyTheLeaseOwnerHandshakes shows that refusal with real leases).
type servedElsewhere struct{ trading.Broker }

func (servedElsewhere) ActiveAccount(context.Context, string) (trading.Account, error) {
	return trading.Account{}, fmt.Errorf("lease busy: %w", trading.ErrServedElsewhere)
}

func (servedElsewhere) Executions(context.Context, string, int) ([]trading.Execution, error) {
	return nil, fmt.Errorf("lease busy: %w", trading.ErrServedElsewhere)
}

// An import that river hands to a replica which does not serve the
// tenant's session is left for the one that does: the replica that is not
// the owner runs the queue alone first, and the import still happens once
// the owner runs it too.
func TestImportLeftToTheReplicaServingTheSession(t *testing.T) {
	w := newWorld(t, fastSim())
	user := w.subscriber(t, "", "50")
	entry := w.confirm(t, user, w.signal(t, "AMZN", "IV", "entry"))
	w.auction(t, true, map[string]float64{"AMZN": 222.22})
	other, err := ledger.New(ledger.Config{Pool: w.pool, Broker: servedElsewhere{w.env.Broker}, RecordFills: w.trade.RecordFills})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var running sync.WaitGroup
	defer func() { cancel(); running.Wait() }()
	run := func(ls *ledger.Service) {
		ns, err := notify.New(notify.Config{Pool: w.pool, Ring: seal.RandomRing("notify"), PollInterval: 50 * time.Millisecond,
			AddWorkers: ls.Register, PeriodicJobs: ls.PeriodicJobs()})
		if err != nil {
			t.Fatal(err)
		}
		running.Go(func() { ns.Run(ctx) })
	}
	// state is the import job's state and how often it was put back.
	state := func() (string, int) {
		var st string
		var snoozes int
		err := w.pool.QueryRow(context.Background(), `SELECT state, coalesce((metadata->>'snoozes')::int, 0) FROM river_job WHERE kind = $1`,
			ledger.ImportArgs{}.Kind()).Scan(&st, &snoozes)
		if errors.Is(err, pgx.ErrNoRows) {
			return "", 0
		}
		if err != nil {
			t.Fatal(err)
		}
		return st, snoozes
	}

	// The other replica alone: it takes the import and puts it back.
	run(other)
	deadline := time.Now().Add(30 * time.Second)
	for st, snoozes := state(); snoozes < 2; st, snoozes = state() {
		if st == "cancelled" || st == "discarded" || st == "completed" || time.Now().After(deadline) {
			t.Fatalf("the import on the replica that does not serve the session: %q, put back %d times; want it put back", st, snoozes)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The owner joins: the import runs there and recovers the fill.
	run(w.ledger)
	for {
		c := w.confirmation(t, user, entry.ID)
		if c.Status == trading.StatusFilled && c.AvgFillPrice != nil && *c.AvgFillPrice == "222.22" {
			break
		}
		if time.Now().After(deadline) {
			st, snoozes := state()
			t.Fatalf("the owner did not import: %s, %s filled; the job %q, put back %d times", c.Status, c.FilledQuantity, st, snoozes)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for st, _ := state(); st != "completed"; st, _ = state() {
		if time.Now().After(deadline) {
			t.Fatalf("the import job is %q, want completed", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// takeBacks records, per broker method, whether each call was allowed to
// take the user's IBKR session back from another login
// (trading.TakesBack).
// scheduled runs ls's scheduled jobs on river, as serve does, until the
// test ends.
func scheduled(t *testing.T, w *world, ls *ledger.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ns, err := notify.New(notify.Config{Pool: w.pool, Ring: seal.RandomRing("notify"), PollInterval: 50 * time.Millisecond,
		AddWorkers: ls.Register, PeriodicJobs: ls.PeriodicJobs()})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var running sync.WaitGroup
	running.Go(func() { ns.Run(ctx) })
	t.Cleanup(func() { cancel(); running.Wait() })
}

// refusing is a broker whose executions are refused with err.
type refusing struct {
	trading.Broker
	err   error
	asked atomic.Int32
}

func (b *refusing) Executions(context.Context, string, int) ([]trading.Execution, error) {
	b.asked.Add(1)
	return nil, b.err
}

// A scheduled import that finds the user's IBKR session held by another
// login (Client Portal, TWS) says so as information, not as a warning: it
// is the user's choice, it would repeat at every sweep, and the import
// never takes the session back. Any other failure still warns.
func TestScheduledImportLeftToAnotherLoginIsNoWarning(t *testing.T) {
	for _, tc := range []struct {
		err   error
		level string
	}{
		{errs.E(errs.BrokerSessionCompeting, "your IBKR session is in use by another login"), "info"},
		{errs.E(errs.BrokerUnavailable, "IBKR did not answer"), "warn"},
	} {
		t.Run(string(errs.CodeOf(tc.err)), func(t *testing.T) {
			w := newWorld(t, fastSim())
			user := w.subscriber(t, "", "50")
			w.confirm(t, user, w.signal(t, "AMZN", "IV", "entry"))
			var sink logtest.Sink
			b := &refusing{Broker: w.env.Broker, err: tc.err}
			ls, err := ledger.New(ledger.Config{Pool: w.pool, Broker: b, RecordFills: w.trade.RecordFills, Log: zerolog.New(&sink)})
			if err != nil {
				t.Fatal(err)
			}
			scheduled(t, w, ls)
			var levels []string
			for deadline := time.Now().Add(30 * time.Second); len(levels) == 0; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no failed import logged in 30 s (%d asked); the log:\n%s", b.asked.Load(), sink.String())
				}
				for _, line := range strings.Split(sink.String(), "\n") {
					var e struct{ Level, Message, User string }
					if json.Unmarshal([]byte(line), &e) == nil && strings.Contains(e.Message, "import of executions failed") && e.User == user {
						levels = append(levels, e.Level)
					}
				}
			}
			for _, l := range levels {
				if l != tc.level {
					t.Errorf("the failed import was logged at %q, want %q", l, tc.level)
				}
			}
		})
	}
}

type takeBacks struct {
	trading.Broker
	mu   sync.Mutex
	seen map[string][]bool
}

func (b *takeBacks) note(ctx context.Context, method string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seen[method] = append(b.seen[method], trading.TakesBack(ctx))
}

func (b *takeBacks) got(method string) []bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.seen[method])
}

func (b *takeBacks) Executions(ctx context.Context, userID string, days int) ([]trading.Execution, error) {
	b.note(ctx, "Executions")
	return b.Broker.Executions(ctx, userID, days)
}

func (b *takeBacks) Positions(ctx context.Context, userID string) ([]trading.Position, error) {
	b.note(ctx, "Positions")
	return b.Broker.Positions(ctx, userID)
}

// The ledger's background imports and the dashboard's positions never take
// the user's IBKR session back from another login (Client Portal, TWS);
// an import the user asks for may. broker's
// TestWorkWithoutTakeBackLeavesTheOtherLogin shows what the mark does.
func TestLedgerReadsLeaveTheOtherLogin(t *testing.T) {
	w := newWorld(t, fastSim())
	user := w.subscriber(t, "", "50")
	w.confirm(t, user, w.signal(t, "AMZN", "IV", "entry"))
	w.auction(t, true, map[string]float64{"AMZN": 222.22})
	rec := &takeBacks{Broker: w.env.Broker, seen: map[string][]bool{}}
	ls, err := ledger.New(ledger.Config{Pool: w.pool, Broker: rec, RecordFills: w.trade.RecordFills})
	if err != nil {
		t.Fatal(err)
	}
	scheduled(t, w, ls)
	for deadline := time.Now().Add(30 * time.Second); len(rec.got("Executions")) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the scheduled import did not run")
		}
	}
	if _, err := ls.Positions(context.Background(), user, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.Import(context.Background(), user); err != nil {
		t.Fatal(err)
	}
	if got := rec.got("Executions"); len(got) != 2 || got[0] || !got[1] {
		t.Errorf("executions read with take-back %v, want [false true] (the scheduled import, then the user's)", got)
	}
	if got := rec.got("Positions"); len(got) != 1 || got[0] {
		t.Errorf("positions read with take-back %v, want [false]", got)
	}
}
