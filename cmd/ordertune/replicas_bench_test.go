package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/replicatest"
)

// BenchmarkReplicasThroughNginx measures, in one run, what
// scripts/BENCHMARKS.md reports for issue 18: confirm latency through a
// real nginx with three replicas and then with one (the same tenants,
// database, simulator and machine), the lease renewal's cost as the
// replicas measured it, and the hand-over time after a SIGTERM and after a
// SIGKILL. It ignores b.N: run it with -benchtime 1x. Each figure is
// logged with the load averages around it.
//
//	go test -run '^$' -bench BenchmarkReplicasThroughNginx -benchtime 1x -v -timeout 20m ./cmd/ordertune/
//
// (-v: without it the testing package keeps only a benchmark's first ten
// log lines.)
func BenchmarkReplicasThroughNginx(b *testing.B) {
	const tenants, rounds = 200, 3
	b.Logf("load averages at the start: %s", loadAverages())
	f := newFleet(b, tenants, 3)
	var addrs []string
	for _, r := range f.replicas {
		addrs = append(addrs, r.Addr)
	}
	three := replicatest.StartNginx(b, addrs)
	one := replicatest.StartNginx(b, addrs[:1])

	// Sessions are made (at most 32 cold tenants at a time), then measured
	// warm: every tenant confirms a new signal at once, rounds times.
	f.mustAllSucceed("first confirms", f.burstLimited(three, f.signal(), 32))
	measure := func(setup, base string) {
		for round := 1; round <= rounds; round++ {
			rs := f.burst(base, f.signal(), 0, nil)
			f.mustAllSucceed(fmt.Sprintf("%s, round %d", setup, round), rs)
			p50, p99 := percentiles(rs)
			b.Logf("%s through nginx, round %d, %d tenants at once: confirm p50 %s, p99 %s (load %s)",
				setup, round, tenants, p50.Round(time.Millisecond), p99.Round(time.Millisecond), loadAverages())
			b.ReportMetric(float64(p50.Milliseconds()), strings.ReplaceAll(setup, " ", "-")+"-p50-ms")
			b.ReportMetric(float64(p99.Milliseconds()), strings.ReplaceAll(setup, " ", "-")+"-p99-ms")
		}
	}
	measure("3 replicas", three)

	// The lease renewal as each replica timed it since it started: one
	// statement per replica per TTL/3 for all of its leases.
	for _, r := range f.replicas {
		m := scrapeMetrics(b, "http://"+r.Addr+"/metrics")
		sum, n := m[`ordertune_session_lease_renewal_seconds_sum{result="ok"}`], m[`ordertune_session_lease_renewal_seconds_count{result="ok"}`]
		if n == 0 {
			b.Fatalf("%s renewed no lease", r.Name)
		}
		b.Logf("%s holds %.0f leases: %.0f renewals, mean %s each; %.0f requests forwarded to their owner", r.Name,
			m["ordertune_session_leases_held"], n, time.Duration(sum/n*float64(time.Second)).Round(time.Microsecond),
			m[`ordertune_forwarded_requests_total{result="ok"}`])
	}

	// Hand-over after SIGTERM: r1's tenants confirm through the replica
	// that stays (nginx in front of r0 alone) at the moment r1 is told to
	// stop; r0 forwards to r1 until r1 releases its leases, then takes the
	// tenants (a handshake each).
	moved := f.ownedBy(f.replicas[1])
	if len(moved) == 0 {
		b.Fatal("r1 owns no tenant")
	}
	sig := f.signal()
	start := time.Now()
	exited := make(chan time.Duration, 1)
	released := make(chan time.Duration, 1)
	go func() { f.replicas[1].Stop(20 * time.Second); exited <- time.Since(start) }()
	go func() { released <- f.releasedAfter(f.replicas[1], start) }()
	rs := f.burstOf(one, sig, 30*time.Second, moved)
	f.mustAllSucceed("SIGTERM hand-over", rs)
	p50, _ := percentiles(rs)
	b.Logf("SIGTERM hand-over of %d tenants: leases released %s after the signal, process exited after %s; their confirms p50 %s, last answered %s after the signal (load %s)",
		len(moved), (<-released).Round(time.Millisecond), (<-exited).Round(time.Millisecond), p50.Round(time.Millisecond),
		lastDone(rs).Sub(start).Round(time.Millisecond), loadAverages())

	// Hand-over after SIGKILL (idle, nothing in flight): r2's tenants wait
	// for its leases to expire (ORDERTUNE_LEASE_TTL, 10 s in the fleet).
	moved = f.ownedBy(f.replicas[2])
	if len(moved) == 0 {
		b.Fatal("r2 owns no tenant")
	}
	sig = f.signal()
	start = time.Now()
	f.replicas[2].Kill()
	rs = f.burstOf(one, sig, 30*time.Second, moved)
	f.mustAllSucceed("SIGKILL hand-over", rs)
	p50, _ = percentiles(rs)
	b.Logf("SIGKILL hand-over of %d tenants (lease TTL 10 s): their confirms p50 %s, last answered %s after the kill (load %s)",
		len(moved), p50.Round(time.Millisecond), lastDone(rs).Sub(start).Round(time.Millisecond), loadAverages())

	// Every tenant is r0's now: the same bursts with one replica.
	measure("1 replica", one)
	b.Logf("load averages at the end: %s", loadAverages())
}

// releasedAfter waits until r holds no live lease and returns how long
// after start that was seen (polled every 5 ms), or -1 when r still held
// some after 30 s. It may run on any goroutine.
func (f *fleet) releasedAfter(r *replicatest.Replica, start time.Time) time.Duration {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		err := f.pool.QueryRow(context.Background(), `
			SELECT count(*) FROM broker_session_leases WHERE owner_url = $1 AND expires_at > now()`, "http://"+r.Addr).Scan(&n)
		if err == nil && n == 0 {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return -1
}

func lastDone(rs []confirmResult) time.Time {
	var last time.Time
	for _, r := range rs {
		if r.done.After(last) {
			last = r.done
		}
	}
	return last
}

// loadAverages returns the machine's 1, 5 and 15 minute load averages.
func loadAverages() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	fs := strings.Fields(string(b))
	if len(fs) < 3 {
		return "unknown"
	}
	return strings.Join(fs[:3], " ")
}

// scrapeMetrics reads a Prometheus text page into series → value
// (series with labels as printed).
func scrapeMetrics(t testing.TB, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
