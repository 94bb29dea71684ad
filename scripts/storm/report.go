package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

func execSQL(ctx context.Context, url string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d.Microseconds())/1000) }

// perConfirm is CPU time per confirm in µs, or per second of the scenario
// when it made no confirms.
func perConfirm(d time.Duration, n int) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f", float64(d.Microseconds())/float64(n))
}

func printResult(res *result) {
	b, a := res.before, res.after
	sim := a.sim.sub(b.sim)
	srv, pg := a.serverCPU-b.serverCPU, a.pgCPU-b.pgCPU
	secs := res.wall.Seconds()
	fmt.Printf("\n== %s: %s\n", res.layout, res.name)
	fmt.Printf("   load averages before %s, after %s; wall %v\n", b.load, a.load, res.wall.Round(time.Millisecond))
	if res.confirms > 0 && strings.HasPrefix(res.name, "pacing") {
		fmt.Printf("   confirms %d: ok %d, errors %d; latency p50 %s ms, p99 %s ms, max %s ms\n",
			res.confirms, res.ok, res.confirms-res.ok, ms(res.p50), ms(res.p99), ms(res.max))
	} else if res.confirms > 0 {
		fmt.Printf("   confirms %d: ok %d, errors %d; orders at the simulator %d; last order %v after the start\n",
			res.confirms, res.ok, res.confirms-res.ok, res.orders, res.lastOrder.Round(time.Millisecond))
		fmt.Printf("   confirm latency p50 %s ms, p99 %s ms, max %s ms\n", ms(res.p50), ms(res.p99), ms(res.max))
		fmt.Printf("   CPU per confirm: server %s µs, PostgreSQL %s µs\n", perConfirm(srv, res.confirms), perConfirm(pg, res.confirms))
	} else if res.p50 > 0 {
		fmt.Printf("   requests ok %d; latency p50 %s ms, p99 %s ms, max %s ms\n", res.ok, ms(res.p50), ms(res.p99), ms(res.max))
	}
	simCPU := a.simCPU - b.simCPU
	fmt.Printf("   CPU: servers %.2f s (%.0f %% of a core), PostgreSQL %.2f s (%.0f %%), simulator %.2f s (%.0f %%)\n",
		srv.Seconds(), 100*srv.Seconds()/secs, pg.Seconds(), 100*pg.Seconds()/secs, simCPU.Seconds(), 100*simCPU.Seconds()/secs)
	fmt.Printf("   PostgreSQL's CPU by process: %s\n", pgSplit(b.pgProcs, a.pgProcs, pg))
	fmt.Printf("   leases: %.0f lost (\"session lease lost\"), %.0f taken over; %.0f requests forwarded to the owning replica\n",
		a.leasesLost-b.leasesLost, a.takeovers-b.takeovers, a.forwarded-b.forwarded)
	fmt.Printf("   simulator: %d requests, %d handshakes (%.0f/s while they ran), %d tickles (%.1f/s), %d × 429, %d penalty box, %d sessions expired idle\n",
		sim.Requests, sim.Handshakes, res.hsPerSec, sim.Tickles, float64(sim.Tickles)/secs, sim.TooManyRequests, sim.PenaltyBox, sim.SessionsExpired)
	fmt.Printf("   server handshakes %.0f; RSS %.1f MiB (peak %.1f MiB)\n", a.handshakes-b.handshakes, res.rss, res.peak)
	fmt.Printf("   main pool: %.0f acquires waited for a connection, %.1f s waited in all; account-lock pool: %.0f waited, %.1f s in all\n",
		a.poolWaits-b.poolWaits, a.poolWaitSecs-b.poolWaitSecs, a.lockWaits-b.lockWaits, a.lockWaitSecs-b.lockWaitSecs)
	if p := res.probe; len(p.lat) > 0 {
		fmt.Printf("   unrelated work meanwhile (GET /readyz every 250 ms): %d probes, p50 %s ms, max %s ms, %d failed\n",
			len(p.lat), ms(pct(p.lat, 0.5)), ms(p.lat[len(p.lat)-1]), p.failed)
	}
	for _, n := range res.notes {
		fmt.Printf("   %s\n", n)
	}
	if len(res.errors) > 0 {
		keys := make([]string, 0, len(res.errors))
		for k := range res.errors {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return res.errors[keys[i]] > res.errors[keys[j]] })
		for i, k := range keys {
			if i == 8 {
				fmt.Printf("   … %d more kinds of error\n", len(keys)-i)
				break
			}
			fmt.Printf("   error ×%d: %s\n", res.errors[k], k)
		}
	}
}

// printTable prints the summary as a Markdown table for BENCHMARKS.md.
func printTable(rs []*result) {
	fmt.Println("\n| layout | scenario | last order at sim | p50 / p99 / max (ms) | CPU µs per confirm: servers (PostgreSQL) [simulator] | errors | orders = confirms | handshakes/s | leases lost / taken over | forwarded | tickles/s | 429 / penalty | RSS MiB (peak) | /readyz meanwhile: p50 / max (failed) | load before → after |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range rs {
		sim := r.after.sim.sub(r.before.sim)
		srv, pg := r.after.serverCPU-r.before.serverCPU, r.after.pgCPU-r.before.pgCPU
		last, lat, cpu, orders := "–", "–", "–", "–"
		if r.confirms > 0 && !strings.HasPrefix(r.name, "pacing") {
			last = fmt.Sprintf("%.1f s", r.lastOrder.Seconds())
			cpu = fmt.Sprintf("%s (%s) [%s]", perConfirm(srv, r.confirms), perConfirm(pg, r.confirms), perConfirm(r.after.simCPU-r.before.simCPU, r.confirms))
			if r.orders > 0 || !strings.HasPrefix(r.name, "pacing") {
				orders = fmt.Sprintf("%d = %d", r.orders, r.ok)
			}
		} else {
			cpu = fmt.Sprintf("%.0f %% + %.0f %% of a core", 100*srv.Seconds()/r.wall.Seconds(), 100*pg.Seconds()/r.wall.Seconds())
		}
		if r.p50 > 0 {
			lat = fmt.Sprintf("%s / %s / %s", ms(r.p50), ms(r.p99), ms(r.max))
		}
		errs := 0
		for _, v := range r.errors {
			errs += v
		}
		probe := "–"
		if p := r.probe; len(p.lat) > 0 {
			probe = fmt.Sprintf("%s / %s ms (%d)", ms(pct(p.lat, 0.5)), ms(p.lat[len(p.lat)-1]), p.failed)
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %d | %s | %.0f | %.0f / %.0f | %.0f | %.1f | %d / %d | %.1f (%.1f) | %s | %s → %s |\n",
			r.layout, r.name, last, lat, cpu, errs, orders, r.hsPerSec, r.after.leasesLost-r.before.leasesLost, r.after.takeovers-r.before.takeovers,
			r.after.forwarded-r.before.forwarded, float64(sim.Tickles)/r.wall.Seconds(),
			sim.TooManyRequests, sim.PenaltyBox, r.rss, r.peak, probe, r.before.load, r.after.load)
	}
}

// queryRow scans the one row that query answers on a fresh connection to url.
func queryRow(ctx context.Context, url, query string, dest ...any) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, query).Scan(dest...)
}
