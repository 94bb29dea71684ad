// Command storm is the market-open benchmark (issue 22): N tenants, each
// its own user, IBKR consumer and account, confirm one signal before the
// opening auction while the simulator sits 50 ms away with IBKR's pacing
// on and PostgreSQL commits with fsync on. It is run by
// `scripts/bench.sh storm`:
//
//	go run ./scripts/storm --bin .bin/ordertune --tenants 10000
//
// The set-up (a private durable cluster, the tenants written in bulk, the
// simulator's consumers FILE) is separate from what is measured. Then, in
// order: the warm-up (a session for every tenant), the warm storm (N
// confirms spread uniformly over --window, then all in the same second),
// keep-alive (every tenant idle for --keepalive), the repair storm after
// the simulator restarted (IBKR's nightly reset: every cached token
// refused), the cold storm after a restart of the server (again over
// --window, and once more all in one second), and the pacing soak
// (--soak-tenants tenants, a realistic mix, for --soak). Each scenario reports the time until the last order reached
// the simulator, confirm latency p50/p99/max, the CPU the servers and
// PostgreSQL spent per confirm (from /proc), errors, orders = confirms,
// handshakes per second, the servers' RSS and the load averages around it.
//
// --replicas 1,3 --nginx runs every scenario once per layout, in one run on
// the same tenants and cluster: one `ordertune serve`, then three replicas,
// each time behind a real nginx configured as internal/replicatest
// configures it for the replicas test (round robin; a replica forwards a
// tenant's IBKR work to the one holding its session lease). Without
// --nginx, tenant i goes straight to replica i mod n. A cold storm restarts
// every replica of the layout; nginx stays.
//
// With --targets the servers are someone else's: the tool starts none,
// cannot run the cold storms (it cannot restart them) and measures no
// server CPU or RSS, only PostgreSQL's.
//
// --pprof SCENARIOS takes a CPU profile of the first replica during those
// scenarios (ORDERTUNE_PPROF_ADDR), and --pg-stat loads
// pg_stat_statements and prints each storm's costliest statements.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/localpg"
	"github.com/ordertune/ordertune/internal/replicatest"
)

type options struct {
	bin         string
	tenants     int
	window      time.Duration
	keepalive   time.Duration
	soak        time.Duration
	soakTenants int
	latency     time.Duration
	simIdle     time.Duration
	replicas    []int
	nginx       bool
	targets     string
	pprof       string
	pgStat      bool
	history     bool
	scenarios   string
	work        string
	conns       int
	warmWorkers int
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", ".bin/ordertune", "the ordertune binary")
	flag.IntVar(&o.tenants, "tenants", 10000, "tenants (users, consumers, accounts)")
	flag.DurationVar(&o.window, "window", 60*time.Second, "the storms' spread")
	flag.DurationVar(&o.keepalive, "keepalive", 5*time.Minute, "how long the keep-alive scenario leaves every tenant idle")
	flag.DurationVar(&o.soak, "soak", 10*time.Minute, "how long the pacing soak runs")
	flag.IntVar(&o.soakTenants, "soak-tenants", 500, "tenants in the pacing soak")
	flag.DurationVar(&o.latency, "latency", 50*time.Millisecond, "the simulator's latency on every IBKR call")
	flag.DurationVar(&o.simIdle, "sim-session-timeout", 2*time.Minute, "the simulator's brokerage session idle timeout (IBKR: about 6 minutes; shorter makes keep-alive prove itself)")
	replicas := flag.String("replicas", "1", "comma-separated layouts: `ordertune serve` processes to start, every scenario run once per layout (1,3: one, then three)")
	flag.BoolVar(&o.nginx, "nginx", false, "put a real nginx in front of each layout's replicas (round robin); without it tenant i uses replica i mod n")
	flag.StringVar(&o.pprof, "pprof", "", "comma-separated scenarios during which to take a CPU profile of the first replica (saved in the working folder)")
	flag.BoolVar(&o.history, "history", true, "give every tenant a confirmation of the previous day (with its status history and notifications), as a database holds on any day but the first")
	flag.BoolVar(&o.pgStat, "pg-stat", false, "load pg_stat_statements and print each storm's costliest statements")
	flag.StringVar(&o.targets, "targets", "", "comma-separated base URLs of servers started elsewhere (nginx in front of replicas); none is started")
	flag.StringVar(&o.scenarios, "scenarios", "warm,burst,keepalive,ibkrrestart,cold,coldburst,soak", "scenarios to run, in this order (warm2: a second warm storm on the same server; ibkrrestart: a storm after the simulator restarted; none: the set-up alone)")
	flag.StringVar(&o.work, "work", "", "working folder (default: a new temporary one)")
	flag.IntVar(&o.conns, "conns", 2000, "the client's connections per server")
	flag.IntVar(&o.warmWorkers, "warm-workers", 400, "concurrent requests of the warm-up")
	flag.Parse()
	for _, f := range strings.Split(*replicas, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "storm: --replicas %q: want counts like 1,3\n", *replicas)
			os.Exit(2)
		}
		o.replicas = append(o.replicas, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "storm:", err)
		os.Exit(1)
	}
}

// runner holds the running world: cluster, simulator, servers, tenants.
type runner struct {
	o       options
	w       *world
	dbURL   string
	ownerDB string // the storm database as its owner (pg_stat_statements)
	sim     string
	simProc *proc
	// targets are where the tenants' requests go: nginx, the replicas
	// themselves, or --targets.
	targets []string
	// addrs are the replicas' own base URLs (metrics, profiles), and
	// servers their processes, while a layout runs.
	addrs      []string
	servers    []*proc
	pprofAddr  string // the first replica's profiler
	layout     string
	postmaster int
	client     *http.Client
	dir        string
	starts     int // server starts so far: names their log files
}

func (r *runner) target(t tenant) string { return r.targets[t.i%len(r.targets)] }

func run(ctx context.Context, o options) error {
	dir := o.work
	if dir == "" {
		d, err := os.MkdirTemp("", "storm-")
		if err != nil {
			return err
		}
		dir = d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	o.bin = bin
	fmt.Printf("storm: %d tenants, IBKR latency %v, window %v; working folder %s\n", o.tenants, o.latency, o.window, dir)
	fmt.Printf("machine: %s; load averages %s\n", cpus(), loadAvg())

	// Set-up: not measured.
	t0 := time.Now()
	pgOpts := localpg.Options{DataDir: filepath.Join(dir, "pg")} // fsync on
	if o.pgStat {
		pgOpts.Settings = []string{"shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=all"}
	}
	cluster, err := localpg.Start(ctx, pgOpts)
	if err != nil {
		return err
	}
	defer cluster.Stop()
	r := &runner{o: o, dir: dir, postmaster: cluster.PID()}
	r.client = &http.Client{Timeout: 120 * time.Second, Transport: &http.Transport{
		MaxIdleConns: o.conns * 4, MaxIdleConnsPerHost: o.conns, MaxConnsPerHost: o.conns, IdleConnTimeout: 5 * time.Minute}}
	if err := execSQL(ctx, cluster.URL("postgres"), "DROP DATABASE IF EXISTS storm", "CREATE DATABASE storm"); err != nil {
		return err
	}
	ownerURL := cluster.URL("storm")
	r.ownerDB = ownerURL
	if err := postgres.Migrate(ownerURL); err != nil {
		return err
	}
	if o.pgStat {
		if err := execSQL(ctx, ownerURL, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
			return err
		}
	}
	// The servers connect as production's do: a LOGIN member of the
	// restricted application role; the set-up writes as the owner.
	if err := postgres.EnsureAppLogin(ctx, ownerURL, "storm_app"); err != nil {
		return err
	}
	if r.dbURL, err = postgres.WithUser(ownerURL, "storm_app"); err != nil {
		return err
	}
	if r.w, err = setUp(ctx, ownerURL, dir, o.tenants, o.history); err != nil {
		return fmt.Errorf("set-up: %w", err)
	}
	fmt.Printf("set-up: %d tenants written in bulk (users with TOTP, sealed credentials, sessions) in %v\n",
		o.tenants, time.Since(t0).Round(time.Millisecond))

	simAddr, err := replicatest.LoopbackAddr()
	if err != nil {
		return err
	}
	r.sim = "http://" + simAddr
	if err := r.startSim(); err != nil {
		return err
	}
	defer func() { r.simProc.stop() }()
	if o.scenarios == "none" {
		return nil // the set-up alone
	}
	var results []*result
	layouts := o.replicas
	if o.targets != "" {
		layouts = []int{0}
	}
	for k, n := range layouts {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rs, err := r.runLayout(ctx, k, n)
		results = append(results, rs...)
		if err != nil {
			printTable(results)
			return err
		}
	}
	printTable(results)
	return nil
}

// tickers are the storms' signals, one list per layout: a tenant never
// confirms the same ticker twice in a run.
var tickers = [][]string{
	{"AAPL", "MSFT", "NVDA", "AMZN", "GOOGL"},
	{"META", "TSLA", "AVGO", "COST", "NFLX"},
	{"AMD", "PEP", "ADBE", "CSCO", "INTC"},
}

// runLayout starts n replicas (behind nginx with --nginx; none with
// --targets) and runs every scenario on them.
func (r *runner) runLayout(ctx context.Context, k, n int) ([]*result, error) {
	o := r.o
	switch {
	case o.targets != "":
		r.targets, r.addrs = strings.Split(o.targets, ","), strings.Split(o.targets, ",")
		r.layout = "targets"
	default:
		r.addrs = nil
		for range n {
			addr, err := replicatest.LoopbackAddr()
			if err != nil {
				return nil, err
			}
			r.addrs = append(r.addrs, "http://"+addr)
		}
		r.layout = fmt.Sprintf("%d replica(s)", n)
		if err := r.startServers(); err != nil {
			return nil, err
		}
		defer r.stopServers()
		r.targets = r.addrs
		if o.nginx {
			var ups []string
			for _, a := range r.addrs {
				ups = append(ups, strings.TrimPrefix(a, "http://"))
			}
			ndir := filepath.Join(r.dir, fmt.Sprintf("nginx-%d", k))
			url, stop, err := replicatest.RunNginx(ndir, ups)
			if err != nil {
				return nil, err
			}
			defer stop()
			r.targets = []string{url}
			r.layout += " behind nginx"
		}
	}
	fmt.Printf("\n=== layout: %s\n", r.layout)
	tk := tickers[k%len(tickers)]
	var results []*result
	report := func(res *result, err error) error {
		if err != nil {
			return err
		}
		res.layout = r.layout
		printResult(res)
		results = append(results, res)
		return nil
	}
	if err := report(r.warmUp(ctx, o.warmWorkers)); err != nil {
		return results, err
	}
	for _, sc := range strings.Split(o.scenarios, ",") {
		if ctx.Err() != nil {
			return results, ctx.Err()
		}
		var err error
		switch sc {
		case "warm":
			err = report(r.storm(ctx, "warm", fmt.Sprintf("warm storm: %d confirms over %v", o.tenants, o.window), tk[0], r.w.tenants, o.window))
		case "warm2":
			// A second warm storm on the same server: its tables hold the
			// first one's rows and its pools and plans are warm.
			err = report(r.storm(ctx, "warm2", fmt.Sprintf("second warm storm: %d confirms over %v", o.tenants, o.window), tk[1], r.w.tenants, o.window))
		case "burst":
			err = report(r.storm(ctx, "burst", fmt.Sprintf("warm storm: %d confirms in the same second", o.tenants), tk[1], r.w.tenants, time.Second))
		case "keepalive":
			err = report(r.keepAlive(ctx, o.keepalive), nil)
		case "cold", "coldburst":
			spread, ticker := o.window, tk[2]
			if sc == "coldburst" {
				spread, ticker = time.Second, tk[3]
			}
			if err = r.restart(); err == nil {
				err = report(r.storm(ctx, sc, fmt.Sprintf("cold storm (server restarted): %d confirms over %v", o.tenants, spread), ticker, r.w.tenants, spread))
			}
		case "ibkrrestart":
			// IBKR restarts (its nightly reset): every cached token is
			// refused, and each tenant's next call repairs its session
			// with one handshake, reusing the access token secret the
			// server remembers from the first.
			if err = r.restartSim(); err == nil {
				err = report(r.storm(ctx, sc, fmt.Sprintf("repair storm (IBKR restarted): %d confirms over %v", o.tenants, o.window), tk[4], r.w.tenants, o.window))
			}
		case "soak":
			n := min(o.soakTenants, len(r.w.tenants))
			err = report(r.soak(ctx, r.w.tenants[:n], o.soak))
		default:
			err = fmt.Errorf("unknown scenario %q", sc)
		}
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

// startSim starts the simulator with every tenant's consumer.
func (r *runner) startSim() error {
	var err error
	r.simProc, err = start("sim", r.dir, r.o.bin, []string{"sim", "--addr", strings.TrimPrefix(r.sim, "http://"),
		"--consumers", r.w.consumers, "--latency", r.o.latency.String(), "--session-timeout", r.o.simIdle.String()},
		nil, r.sim, "/sim/totals")
	return err
}

// restartSim restarts the simulator: every live session token and
// brokerage session is gone, as after IBKR's nightly restart. Its counters
// start again from zero, so the scenario's readings are taken after.
func (r *runner) restartSim() error {
	r.simProc.stop()
	t0 := time.Now()
	if err := r.startSim(); err != nil {
		return err
	}
	fmt.Printf("simulator restarted, ready after %v\n", time.Since(t0).Round(time.Millisecond))
	return nil
}

// serveEnv is the environment of one `ordertune serve` on addr. The
// simulator restarts only when a scenario says so, so the servers know no
// IBKR restart window: a storm run at night (IBKR's daily restart is 00:15 to
// 01:45 New York time) would otherwise be refused whole with
// broker_maintenance.
func (r *runner) serveEnv(addr string) []string {
	return []string{"DATABASE_URL=" + r.dbURL, "ORDERTUNE_MASTER_KEYS=" + r.w.keys, "ORDERTUNE_ADDR=" + addr,
		"ORDERTUNE_PUBLIC_URL=http://" + addr, "ORDERTUNE_IBKR_BASE_URL=" + r.sim + "/v1/api",
		"ORDERTUNE_LOG_LEVEL=warn", "ORDERTUNE_SIGNUP=closed", "ORDERTUNE_IBKR_MAINTENANCE=none"}
}

// startServers starts the layout's replicas on r.addrs, all at once.
func (r *runner) startServers() error {
	r.starts++
	r.servers = make([]*proc, len(r.addrs))
	errs := make([]error, len(r.addrs))
	r.pprofAddr = ""
	var wg sync.WaitGroup
	for i, a := range r.addrs {
		env := r.serveEnv(strings.TrimPrefix(a, "http://"))
		if i == 0 && r.o.pprof != "" {
			pa, err := replicatest.LoopbackAddr()
			if err != nil {
				return err
			}
			r.pprofAddr = pa
			env = append(env, "ORDERTUNE_PPROF_ADDR="+pa)
		}
		name := fmt.Sprintf("serve%d-%d", i, r.starts)
		wg.Go(func() { r.servers[i], errs[i] = start(name, r.dir, r.o.bin, []string{"serve"}, env, a, "/readyz") })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		r.stopServers()
		return err
	}
	return nil
}

func (r *runner) stopServers() {
	var wg sync.WaitGroup
	for _, p := range r.servers {
		wg.Go(p.stop)
	}
	wg.Wait()
	r.servers = nil
}

// restart stops and starts every server: their session caches are empty.
func (r *runner) restart() error {
	if r.o.targets != "" {
		return fmt.Errorf("cold storms need servers this tool started (no --targets)")
	}
	r.stopServers()
	t0 := time.Now()
	if err := r.startServers(); err != nil {
		return err
	}
	r.client.CloseIdleConnections()
	fmt.Printf("servers restarted, ready after %v\n", time.Since(t0).Round(time.Millisecond))
	return nil
}

func cpus() string {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	n := strings.Count(string(raw), "\nprocessor") + 1
	return fmt.Sprintf("%d CPUs", n)
}
