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
// With --targets the servers are someone else's (three replicas behind
// nginx, say): the tool starts none, cannot run the cold storms (it cannot
// restart them) and measures no server CPU or RSS, only PostgreSQL's.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/localpg"
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
	servers     int
	targets     string
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
	flag.IntVar(&o.servers, "servers", 1, "`ordertune serve` processes to start; tenant i uses server i mod servers")
	flag.StringVar(&o.targets, "targets", "", "comma-separated base URLs of servers started elsewhere (nginx in front of replicas); none is started")
	flag.StringVar(&o.scenarios, "scenarios", "warm,burst,keepalive,ibkrrestart,cold,coldburst,soak", "scenarios to run, in this order (ibkrrestart: a storm after the simulator restarted; none: the set-up alone)")
	flag.StringVar(&o.work, "work", "", "working folder (default: a new temporary one)")
	flag.IntVar(&o.conns, "conns", 2000, "the client's connections per server")
	flag.IntVar(&o.warmWorkers, "warm-workers", 400, "concurrent requests of the warm-up")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "storm:", err)
		os.Exit(1)
	}
}

// runner holds the running world: cluster, simulator, servers, tenants.
type runner struct {
	o          options
	w          *world
	dbURL      string
	sim        string
	simProc    *proc
	targets    []string
	servers    []*proc
	postmaster int
	client     *http.Client
	dir        string
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
	cluster, err := localpg.Start(ctx, localpg.Options{DataDir: filepath.Join(dir, "pg")}) // fsync on
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
	if err := postgres.Migrate(ownerURL); err != nil {
		return err
	}
	// The servers connect as production's do: a LOGIN member of the
	// restricted application role; the set-up writes as the owner.
	if err := postgres.EnsureAppLogin(ctx, ownerURL, "storm_app"); err != nil {
		return err
	}
	if r.dbURL, err = postgres.WithUser(ownerURL, "storm_app"); err != nil {
		return err
	}
	if r.w, err = setUp(ctx, ownerURL, dir, o.tenants); err != nil {
		return fmt.Errorf("set-up: %w", err)
	}
	fmt.Printf("set-up: %d tenants written in bulk (users with TOTP, sealed credentials, sessions) in %v\n",
		o.tenants, time.Since(t0).Round(time.Millisecond))

	simAddr, err := freeAddr()
	if err != nil {
		return err
	}
	r.sim = "http://" + simAddr
	if err := r.startSim(); err != nil {
		return err
	}
	defer func() { r.simProc.stop() }()
	if o.targets != "" {
		r.targets = strings.Split(o.targets, ",")
	} else {
		if err := r.startServers(); err != nil {
			return err
		}
		defer r.stopServers()
	}

	var results []*result
	report := func(res *result, err error) error {
		if err != nil {
			return err
		}
		printResult(res)
		results = append(results, res)
		return nil
	}
	if o.scenarios == "none" {
		return nil // the set-up alone
	}
	if err := report(r.warmUp(ctx, o.warmWorkers)); err != nil {
		return err
	}
	for _, sc := range strings.Split(o.scenarios, ",") {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var err error
		switch sc {
		case "warm":
			err = report(r.storm(ctx, "warm", fmt.Sprintf("warm storm: %d confirms over %v", o.tenants, o.window), "AAPL", r.w.tenants, o.window))
		case "burst":
			err = report(r.storm(ctx, "burst", fmt.Sprintf("warm storm: %d confirms in the same second", o.tenants), "MSFT", r.w.tenants, time.Second))
		case "keepalive":
			err = report(r.keepAlive(ctx, o.keepalive), nil)
		case "cold", "coldburst":
			spread, ticker := o.window, "NVDA"
			if sc == "coldburst" {
				spread, ticker = time.Second, "AMZN"
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
				err = report(r.storm(ctx, sc, fmt.Sprintf("repair storm (IBKR restarted): %d confirms over %v", o.tenants, o.window), "GOOGL", r.w.tenants, o.window))
			}
		case "soak":
			n := min(o.soakTenants, len(r.w.tenants))
			err = report(r.soak(ctx, r.w.tenants[:n], o.soak))
		default:
			err = fmt.Errorf("unknown scenario %q", sc)
		}
		if err != nil {
			return err
		}
	}
	printTable(results)
	return nil
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

// serveEnv is the environment of one `ordertune serve` on addr.
func (r *runner) serveEnv(addr string) []string {
	return []string{"DATABASE_URL=" + r.dbURL, "ORDERTUNE_MASTER_KEYS=" + r.w.keys, "ORDERTUNE_ADDR=" + addr,
		"ORDERTUNE_PUBLIC_URL=http://" + addr, "ORDERTUNE_IBKR_BASE_URL=" + r.sim + "/v1/api",
		"ORDERTUNE_LOG_LEVEL=warn", "ORDERTUNE_SIGNUP=closed"}
}

func (r *runner) startServers() error {
	if len(r.targets) == 0 {
		for range r.o.servers {
			addr, err := freeAddr()
			if err != nil {
				return err
			}
			r.targets = append(r.targets, "http://"+addr)
		}
	}
	r.servers = nil
	for i, t := range r.targets {
		addr := strings.TrimPrefix(t, "http://")
		p, err := start("serve"+strconv.Itoa(i), r.dir, r.o.bin, []string{"serve"}, r.serveEnv(addr), t, "/readyz")
		if err != nil {
			return err
		}
		r.servers = append(r.servers, p)
	}
	return nil
}

func (r *runner) stopServers() {
	for _, p := range r.servers {
		p.stop()
	}
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
