package trading_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/time/rate"

	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/notify"
	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/localpg"
	"github.com/ordertune/ordertune/internal/risk"
	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

// BenchmarkConfirm measures the confirm flow end to end — write-ahead row
// committed, order placed at the simulator over HTTP, outcome committed —
// at 1, 16 and 64 concurrent clients (each its own user and IBKR account,
// as orders to one account are serialized by design), next to a baseline
// of two sequential committed single-row writes on the same database at
// the same concurrency. It reports p50 and p99 latency and throughput.
//
// IBKR's pacing is off in the simulator and the client here, so the
// numbers show Ordertune's own cost, not IBKR's 10 requests per second.
//
// Next to the latencies it reports the CPU time one operation costs: the
// PostgreSQL server's processes and this process (client, pgx and the
// simulator) together, and PostgreSQL's share. Once the clients saturate
// the machine, latency is this cost times the queue, and on a shared,
// noisy machine the CPU time is the steadier figure.
//
//	go test -run '^$' -bench BenchmarkConfirm -benchtime 2000x ./internal/trading/
func BenchmarkConfirm(b *testing.B) {
	// A durable cluster of its own: the shared test cluster turns fsync and
	// synchronous commit off, which would make a commit free and the
	// comparison meaningless.
	dir := b.TempDir()
	cluster, err := localpg.Start(context.Background(), localpg.Options{DataDir: filepath.Join(dir, "pg")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cluster.Stop() })
	meter := cpuMeter{server: cluster.PID()}
	n := 0
	newPool := func(b *testing.B) *pgxpool.Pool {
		b.Helper()
		n++
		db := fmt.Sprintf("bench%d", n)
		if _, err := execOn(cluster.URL("postgres"), "CREATE DATABASE "+db); err != nil {
			b.Fatal(err)
		}
		url := cluster.URL(db)
		if err := postgres.Migrate(url); err != nil {
			b.Fatal(err)
		}
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			b.Fatal(err)
		}
		cfg.MaxConns = 80
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
		return pool
	}
	// The headline (issue 22) is the CPU a confirm costs against the CPU of
	// the baseline's two writes at the same concurrency: the baseline runs
	// first and the confirm reports the ratio as cpu-x-baseline.
	for _, clients := range []int{1, 16, 64} {
		var base float64
		ratio := func(b *testing.B, cpu float64) {
			if base > 0 {
				b.ReportMetric(cpu/base, "cpu-x-baseline")
			}
		}
		b.Run(fmt.Sprintf("clients=%d/baseline_2_writes", clients), func(b *testing.B) { base = benchBaseline(b, newPool(b), meter, clients) })
		b.Run(fmt.Sprintf("clients=%d/confirm", clients), func(b *testing.B) { ratio(b, benchConfirm(b, newPool(b), meter, clients, false, false)) })
		b.Run(fmt.Sprintf("clients=%d/confirm_notified", clients), func(b *testing.B) { ratio(b, benchConfirm(b, newPool(b), meter, clients, false, true)) })
		b.Run(fmt.Sprintf("clients=%d/durable_writes_only", clients), func(b *testing.B) { ratio(b, benchConfirm(b, newPool(b), meter, clients, true, false)) })
		b.Run(fmt.Sprintf("clients=%d/ibkr_order_only", clients), func(b *testing.B) { ratio(b, benchOrderOnly(b, newPool(b), meter, clients)) })
	}
}

// execOn runs one statement on a fresh connection to url.
func execOn(url, sql string) (pgconn.CommandTag, error) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer conn.Close(ctx)
	return conn.Exec(ctx, sql)
}

// benchWorld is a world for the benchmarks: the simulator and the client
// with IBKR's pacing off. With notified, every outcome is told as serve
// tells it: the event, the in-app notification and the outbox row written
// by the outcome's statement, and the dispatcher queueing the e-mail jobs
// (the e-mail is never sent: no worker runs).
func benchWorld(b *testing.B, pool *pgxpool.Pool, notified bool) *world {
	env := tradetest.NewEnv(b, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}}, tradetest.SimBrokerOptions{
		Limits: ibkr.PacerLimits{Global: rate.Inf, LiveOrders: rate.Inf, Trades: rate.Inf, Tickle: rate.Inf, PortfolioAccounts: rate.Inf}})
	// Ceilings far above what b.N confirms per user add up to: every
	// check runs, none refuses.
	high := func(v string) *string { return &v }
	rs, err := risk.New(risk.Config{Pool: pool, Ceilings: risk.Limits{MaxOrderValue: high("999999999999"),
		MaxSharesPerOrder: high("999999999"), MaxOrdersPerDay: high("999999999"), MaxDailyValue: high("999999999999")}})
	if err != nil {
		b.Fatal(err)
	}
	cfg := trading.Config{Pool: pool, Broker: env.Broker, Risk: rs}
	if notified {
		ns, err := notify.New(notify.Config{Pool: pool, SMTPURL: "smtp://127.0.0.1:1", MailFrom: "bench@example.com"})
		if err != nil {
			b.Fatal(err)
		}
		n := &notifier{ns: ns, fail: map[trading.Status]int{}}
		cfg.OutcomeEvent = n.event
		// The outbox's dispatcher runs as in serve (every 100 ms), so its
		// cost is measured with the confirm's: it queues the e-mail jobs.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { ns.DispatchLoop(ctx); close(done) }()
		b.Cleanup(func() { cancel(); <-done })
	}
	svc, err := trading.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return &world{env: env, pool: pool, svc: svc, admin: tradetest.NewUser(b, pool, "admin")}
}

// perUserPerDay is how many confirms one subscriber makes in the
// benchmark: a client takes turns among enough subscribers to stay under
// it, as real subscribers stay under the default daily cap of 50 orders.
// (One subscriber making thousands of confirms a day would measure the
// day's usage count of the risk check, which grows with them.)
const perUserPerDay = 40

// benchConfirm measures whole confirms, or with writesOnly just their two
// durable writes (the previews are made before the clock starts), and
// returns the CPU µs per operation.
func benchConfirm(b *testing.B, pool *pgxpool.Pool, meter cpuMeter, clients int, writesOnly, notified bool) float64 {
	ctx := context.Background()
	w := benchWorld(b, pool, notified)
	env, svc := w.env, w.svc
	perClient := (b.N + clients - 1) / clients
	perUser := min(perClient, perUserPerDay)
	// user(c, i) is the subscriber that client c's confirm i is made by.
	subs := make([][]string, clients)
	for c := range subs {
		subs[c] = make([]string, (perClient+perUser-1)/perUser)
		for k := range subs[c] {
			subs[c][k] = w.subscriber(b, trading.SizeShares, "1")
			if _, err := env.Broker.Session(ctx, subs[c][k]); err != nil { // handshake outside the measurement
				b.Fatal(err)
			}
		}
	}
	user := func(c, i int) string { return subs[c][(i/clients)/perUser] }
	users := make([]string, clients)
	for c := range users {
		users[c] = subs[c][0]
	}
	signals := make([]string, perClient)
	for i := range signals {
		signals[i] = w.signal(b, nil).ID
	}
	history(b, pool, w.signal(b, nil).ID)
	warmup := w.signal(b, nil).ID
	warm(b, clients, func(c int) error {
		_, _, err := svc.Confirm(ctx, users[c], warmup, "warmup", "BUY")
		return err
	})
	if writesOnly {
		previews := make([]trading.Preview, b.N)
		for i := range previews {
			var err error
			if previews[i], err = svc.Preview(ctx, user(i%clients, i), signals[i/clients]); err != nil {
				b.Fatal(err)
			}
		}
		return measure(b, meter, clients, func(c, i int) error { return svc.DurableWrites(ctx, user(c, i), fmt.Sprint(i), previews[i]) })
	}
	return measure(b, meter, clients, func(c, i int) error {
		conf, _, err := svc.Confirm(ctx, user(c, i), signals[i/clients], fmt.Sprint(i), "BUY")
		if err != nil || conf.Status != trading.StatusSubmitted {
			return fmt.Errorf("confirm %d: %s %v", i, conf.Status, err)
		}
		return nil
	})
}

// benchOrderOnly places the confirm's order at the simulator through the
// same client and sessions, without the database: the part of a confirm's
// cost that IBKR's HTTP API and its simulator account for.
func benchOrderOnly(b *testing.B, pool *pgxpool.Pool, meter cpuMeter, clients int) float64 {
	ctx := context.Background()
	w := benchWorld(b, pool, false)
	conns := make([]tradetest.Conn, clients)
	var conid int64
	for i := range conns {
		var err error
		if conns[i], err = w.env.Broker.Session(ctx, w.subscriber(b, trading.SizeShares, "1")); err != nil {
			b.Fatal(err)
		}
		if conid == 0 {
			l, err := conns[i].Session.USStock(ctx, "AAPL")
			if err != nil {
				b.Fatal(err)
			}
			conid = l.Conid
		}
	}
	place := func(c int, coid string) error {
		a := conns[c].Account.ID
		_, err := conns[c].Session.PlaceOrder(ctx, a, ibkr.Order{AcctID: a, Conid: conid, COID: coid, OrderType: "MKT",
			Side: "BUY", Quantity: 1, TIF: "OPG"}, ibkr.ConfirmMessageIDs(broker.DefaultAllowedQuestions()...))
		return err
	}
	warm(b, clients, func(c int) error { return place(c, fmt.Sprint("warmup-", c)) })
	return measure(b, meter, clients, func(c, i int) error { return place(c, fmt.Sprint(i)) })
}

func benchBaseline(b *testing.B, pool *pgxpool.Pool, meter cpuMeter, clients int) float64 {
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE bench_writes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, k text NOT NULL, at timestamptz NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	insert := func(k string) error {
		_, err := pool.Exec(ctx, `INSERT INTO bench_writes (k, at) VALUES ($1, now())`, k)
		return err
	}
	warm(b, clients, func(int) error { return insert("warmup") })
	return measure(b, meter, clients, func(_, i int) error {
		for range 2 { // two sequential committed single-row writes
			if err := insert(fmt.Sprint(i)); err != nil {
				return err
			}
		}
		return nil
	})
}

// history gives every subscriber 1,000 earlier confirmations (with their
// status history and audit entries) and has the database analyzed, so the
// measurement runs against a database in use, with the statistics that
// autovacuum keeps. On empty, never analyzed tables PostgreSQL may cache a
// poor plan for the whole run (the idempotency-key lookup, for one, ties
// between two indexes and can scan all of a user's rows).
func history(b *testing.B, pool *pgxpool.Pool, signalID string) {
	ctx := context.Background()
	for _, q := range []string{`
		INSERT INTO confirmations (id, user_id, signal_id, side, idempotency_key, request_hash, ticker, quantity,
			order_type, tif, ref_price, mode, account_id_masked, status, created_at, updated_at)
		SELECT gen_random_uuid(), u.id, $1::uuid, 'BUY', 'history-' || g, '\x00', 'AAPL', 1, 'MKT', 'OPG', 100,
			'paper', 'DU…1', 'cancelled', now() - g * interval '1 hour', now() - g * interval '1 hour'
		FROM users u CROSS JOIN generate_series(1, 1000) g WHERE u.role = 'subscriber'`, `
		INSERT INTO confirmation_events (confirmation_id, at, status, message)
		SELECT id, created_at, s, 'history' FROM confirmations CROSS JOIN unnest('{pending,submitted,cancelled}'::text[]) s`, `
		INSERT INTO audit_events (at, user_id, action, subject)
		SELECT e.at, c.user_id, 'confirmation.' || e.status, c.id::text
		FROM confirmation_events e JOIN confirmations c ON c.id = e.confirmation_id`,
		`ANALYZE`} {
		var args []any
		if strings.Contains(q, "$1") {
			args = []any{signalID}
		}
		if _, err := pool.Exec(ctx, q, args...); err != nil {
			b.Fatal(err)
		}
	}
}

// warm runs op once per client, concurrently, before the measurement: every
// connection the clients use is open and has its statements prepared, as
// in a server that has been running for a while.
func warm(b *testing.B, clients int, op func(c int) error) {
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			if err := op(c); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
}

// measure runs op b.N times spread over clients goroutines (client c takes
// i = c, c+clients, ...), reports latency, throughput and CPU time, and
// returns the CPU µs per operation. A failed op stops its client; the
// benchmark has failed then, so its latency is moot.
func measure(b *testing.B, meter cpuMeter, clients int, op func(c, i int) error) float64 {
	lat := make([][]time.Duration, clients)
	b.ResetTimer()
	cpu0 := meter.read(b)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < b.N; i += clients {
				t0 := time.Now()
				if err := op(c, i); err != nil {
					b.Error(err)
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := meter.read(b).sub(cpu0)
	report(b, lat, elapsed)
	perOp := float64((cpu.server + cpu.self).Microseconds()) / float64(b.N)
	b.ReportMetric(perOp, "cpu-µs/op")
	b.ReportMetric(float64(cpu.server.Microseconds())/float64(b.N), "pg-cpu-µs/op")
	return perOp
}

// cpuMeter reads the CPU time used so far by the PostgreSQL server (the
// postmaster and every process it started) and by this process.
type cpuMeter struct{ server int }

type cpuTimes struct{ server, self time.Duration }

func (t cpuTimes) sub(u cpuTimes) cpuTimes { return cpuTimes{t.server - u.server, t.self - u.self} }

func (m cpuMeter) read(b *testing.B) cpuTimes {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	t := cpuTimes{self: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || (pid != m.server && parentOf(pid) != m.server) {
			continue
		}
		// schedstat's first field: nanoseconds on a CPU, all threads.
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
		if err != nil {
			continue // the process ended in between
		}
		var ns int64
		fmt.Sscan(string(raw), &ns)
		t.server += time.Duration(ns)
	}
	return t
}

// parentOf returns pid's parent process id, or 0.
func parentOf(pid int) int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// "pid (comm) state ppid ...": comm may hold spaces, so start after ')'.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// report adds p50/p99 latency and throughput to the benchmark's output.
func report(b *testing.B, lat [][]time.Duration, elapsed time.Duration) {
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		i := int(p * float64(len(all)-1))
		return float64(all[i].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
}
