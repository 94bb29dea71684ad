package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// profile takes a CPU profile of the first replica during scenario key
// when --pprof names it, for spread plus the 10 s after (where a cold
// storm's queue drains), then a heap profile, saved as
// <layout>-<key>.pprof and <layout>-<key>.heap.pprof in the working
// folder; the returned function waits for them and says where they are.
// The heap profile's sampling follows the server's GODEBUG (e.g.
// memprofilerate=4096 for a finer one than the default 512 KiB).
func (r *runner) profile(ctx context.Context, key string, spread time.Duration) func() string {
	if r.pprofAddr == "" || !slices.Contains(strings.Split(r.o.pprof, ","), key) {
		return func() string { return "" }
	}
	secs := int((spread + 10*time.Second).Seconds())
	name := r.artifact(key, "")
	done := make(chan string, 1)
	go func() {
		if err := fetchTo(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", r.pprofAddr, secs), name+".pprof"); err != nil {
			done <- "profile: " + err.Error()
			return
		}
		if err := fetchTo(ctx, fmt.Sprintf("http://%s/debug/pprof/heap", r.pprofAddr), name+".heap.pprof"); err != nil {
			done <- "heap profile: " + err.Error()
			return
		}
		done <- fmt.Sprintf("CPU profile of the first replica (%d s from the start): %s.pprof; heap profile after it: %[2]s.heap.pprof", secs, name)
	}()
	return func() string { return <-done }
}

// artifact is the path in the working folder of a file that the layout's
// scenario key leaves: <layout>-<key><suffix>.
func (r *runner) artifact(key, suffix string) string {
	layout := strings.NewReplacer(" ", "-", "(", "", ")", "").Replace(r.layout)
	return filepath.Join(r.dir, layout+"-"+key+suffix)
}

// fetchTo saves what a GET of url answers in the file name.
func fetchTo(ctx context.Context, url, name string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// resetStatements empties pg_stat_statements (with --pg-stat) so that a
// storm's figures are its own.
func (r *runner) resetStatements(ctx context.Context) {
	if r.o.pgStat {
		if err := execSQL(ctx, r.ownerDB, "SELECT pg_stat_statements_reset()"); err != nil {
			fmt.Fprintln(os.Stderr, "storm: pg_stat_statements_reset:", err)
		}
	}
}

// statements returns the storm's costliest statements (with --pg-stat):
// execution time per confirm, calls per confirm, rows, the first words.
func (r *runner) statements(ctx context.Context, confirms int) []string {
	if !r.o.pgStat || confirms == 0 {
		return nil
	}
	conn, err := pgx.Connect(ctx, r.ownerDB)
	if err != nil {
		return []string{"pg_stat_statements: " + err.Error()}
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT calls, total_exec_time, total_plan_time, rows, wal_bytes, query
		FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 25`)
	if err != nil {
		return []string{"pg_stat_statements: " + err.Error()}
	}
	defer rows.Close()
	out := []string{"costliest statements (pg_stat_statements; µs and calls per confirm):"}
	var sumT, sumC float64
	for rows.Next() {
		var calls, nrows int64
		var exec, plan float64
		var wal any
		var q string
		if err := rows.Scan(&calls, &exec, &plan, &nrows, &wal, &q); err != nil {
			return append(out, err.Error())
		}
		sumT += exec + plan
		sumC += float64(calls)
		q = strings.Join(strings.Fields(q), " ")
		if len(q) > 140 {
			q = q[:140] + "…"
		}
		out = append(out, fmt.Sprintf("  %7.0f µs  %5.2f calls  %7d rows  %s", 1000*(exec+plan)/float64(confirms), float64(calls)/float64(confirms), nrows, q))
	}
	var allT, allC float64
	_ = conn.QueryRow(ctx, `SELECT coalesce(sum(total_exec_time + total_plan_time), 0), coalesce(sum(calls), 0) FROM pg_stat_statements`).Scan(&allT, &allC)
	out = append(out, fmt.Sprintf("  all statements: %.0f µs and %.1f calls per confirm (top 25: %.0f µs, %.1f calls)",
		1000*allT/float64(confirms), allC/float64(confirms), 1000*sumT/float64(confirms), sumC/float64(confirms)))
	return out
}

// waits samples, every 20 ms while a storm runs (with --pg-stat), what
// the storm database's active backends are doing: the wait event each
// waits for, or "CPU" when none (running, or queued for a core). The
// returned function stops the sampling and returns the events' shares of
// all samples, the largest first. Every sample is also written to
// <layout>-<key>.waits.csv: its moment (ms from the start), and each
// active backend's wait and the first words of its statement.
func (r *runner) waits(ctx context.Context, key string) func() []string {
	if !r.o.pgStat {
		return func() []string { return nil }
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan []string, 1)
	go func() {
		counts := map[string]int{}
		total, samples := 0, 0
		conn, err := pgx.Connect(ctx, r.ownerDB)
		if err != nil {
			done <- []string{"wait events: " + err.Error()}
			return
		}
		defer conn.Close(context.WithoutCancel(ctx))
		name := r.artifact(key, ".waits.csv")
		var csv strings.Builder
		csv.WriteString("at_ms,active,backends\n")
		defer func() { _ = os.WriteFile(name, []byte(csv.String()), 0o644) }()
		start := time.Now()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				done <- waitShares(counts, total, samples)
				return
			case <-t.C:
			}
			rows, err := conn.Query(ctx, `SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'),
					left(regexp_replace(query, '\s+', ' ', 'g'), 40)
				FROM pg_stat_activity WHERE state = 'active' AND datname = current_database() AND pid <> pg_backend_pid()`)
			if err != nil {
				continue
			}
			var line []string
			for rows.Next() {
				var ev, q string
				if rows.Scan(&ev, &q) == nil {
					counts[ev]++
					total++
					line = append(line, ev+"|"+strings.ReplaceAll(q, ";", ","))
				}
			}
			rows.Close()
			fmt.Fprintf(&csv, "%d,%d,%s\n", time.Since(start).Milliseconds(), len(line), strings.Join(line, ";"))
			samples++
		}
	}()
	return func() []string { cancel(); return <-done }
}

// waitShares formats waits' counts: each event's share of all active
// backends sampled, and the mean number active per sample.
func waitShares(counts map[string]int, total, samples int) []string {
	if samples == 0 || total == 0 {
		return []string{"wait events: no active backend sampled"}
	}
	evs := make([]string, 0, len(counts))
	for ev := range counts {
		evs = append(evs, ev)
	}
	slices.SortFunc(evs, func(a, b string) int { return counts[b] - counts[a] })
	out := []string{fmt.Sprintf("what active backends were doing (pg_stat_activity every 20 ms, %d samples, %.1f active on average):",
		samples, float64(total)/float64(samples))}
	for i, ev := range evs {
		if i == 12 {
			break
		}
		out = append(out, fmt.Sprintf("  %5.1f %%  %s", 100*float64(counts[ev])/float64(total), ev))
	}
	return out
}

// leaseLostLines counts "session lease lost" lines in the running
// replicas' logs: a replica that dropped a tenant's session because its
// lease lapsed under load.
func (r *runner) leaseLostLines() int {
	n := 0
	for _, p := range r.servers {
		b, err := os.ReadFile(filepath.Join(r.dir, p.name+".log"))
		if err == nil {
			n += strings.Count(string(b), "session lease lost")
		}
	}
	return n
}
