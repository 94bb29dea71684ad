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
	name := filepath.Join(r.dir, fmt.Sprintf("%s-%s", strings.NewReplacer(" ", "-", "(", "", ")", "").Replace(r.layout), key))
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
