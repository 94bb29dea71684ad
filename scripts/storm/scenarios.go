package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordertune/ordertune/internal/market"
)

// call sends one request as tenant t (its session cookie) to its server
// and returns the status and body.
func (r *runner) call(ctx context.Context, t tenant, method, path string, body any, hdr map[string]string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.target(t)+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Cookie", "ordertune_session="+t.cookie)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// publish publishes an entry signal for ticker (market on open, the next
// opening auction whose cut-off has not passed) with the admin's token.
func (r *runner) publish(ctx context.Context, ticker string) (string, error) {
	clock := market.Default()
	day := clock.Cutoff(market.Open, time.Now()).In(clock.Location()).Format("2006-01-02")
	b, _ := json.Marshal(map[string]any{"ticker": ticker, "strategy": "I", "kind": "entry", "signal_date": day,
		"entry_date": day, "ref_close": "190.00", "rsi2": "4.5", "return_2d": "-0.031", "entry_mode": "next_open_market"})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.targets[0]+"/api/v1/signals", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.w.token)
	resp, err := r.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var g struct {
		ID string `json:"id"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(raw, &g) != nil {
		return "", fmt.Errorf("publish %s: %d %s", ticker, resp.StatusCode, raw)
	}
	return g.ID, nil
}

// confirm confirms signal as t and returns the confirmation's id, or an
// error class ("HTTP 409 conflict", "status unknown", …).
func (r *runner) confirm(ctx context.Context, t tenant, signal, key string) (string, string) {
	status, body, err := r.call(ctx, t, http.MethodPost, "/api/v1/signals/"+signal+"/confirm",
		map[string]string{"side": "BUY"}, map[string]string{"Idempotency-Key": key})
	if err != nil {
		// The last part only ("connection reset by peer"): the
		// addresses and ports before it would make every error its own
		// kind.
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		return "", "transport: " + msg
	}
	var c struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	json.Unmarshal(body, &c)
	switch {
	case status != http.StatusCreated && status != http.StatusOK:
		return "", fmt.Sprintf("HTTP %d %s: %.60s", status, c.Code, c.Detail)
	case c.Status != "submitted":
		return c.ID, "status " + c.Status
	}
	return c.ID, ""
}

// meter is the readings taken around a scenario.
type meter struct {
	at               time.Time
	serverCPU, pgCPU time.Duration
	sim              simStats
	handshakes       float64 // the servers' ordertune_ibkr_handshakes_total
	// poolWaits and poolWaitSecs are the servers' main pools' acquires
	// that waited for a connection, and the time they waited; lockWaits
	// and lockWaitSecs the same of their account-lock pools.
	poolWaits, poolWaitSecs float64
	lockWaits, lockWaitSecs float64
	simCPU                  time.Duration // the simulator's process
	pgProcs                 map[int]pgProc
	// leasesLost is the replicas' "session lease lost" log lines;
	// takeovers and forwarded their metrics' totals.
	leasesLost, takeovers, forwarded float64
	load                             string
}

func (r *runner) read(ctx context.Context) meter {
	m := meter{at: time.Now(), pgCPU: pgCPU(r.postmaster), sim: readSimStats(ctx, r.sim), load: loadAvg()}
	m.simCPU = cpuOf(r.simProc.pid(), false)
	m.pgProcs = pgProcs(r.postmaster)
	for _, p := range r.servers {
		m.serverCPU += cpuOf(p.pid(), false)
	}
	m.leasesLost = float64(r.leaseLostLines())
	for _, t := range r.addrs {
		v, _ := metric(ctx, t, "ordertune_session_lease_handovers_total", `kind="takeover"`)
		m.takeovers += v
		v, _ = metric(ctx, t, "ordertune_forwarded_requests_total", "")
		m.forwarded += v
		v, _ = metric(ctx, t, "ordertune_ibkr_handshakes_total", "")
		m.handshakes += v
		v, _ = metric(ctx, t, "ordertune_db_pool_empty_acquires_total", `pool="main"`)
		m.poolWaits += v
		v, _ = metric(ctx, t, "ordertune_db_pool_acquire_wait_seconds_total", `pool="main"`)
		m.poolWaitSecs += v
		v, _ = metric(ctx, t, "ordertune_db_pool_empty_acquires_total", `pool="account_locks"`)
		m.lockWaits += v
		v, _ = metric(ctx, t, "ordertune_db_pool_acquire_wait_seconds_total", `pool="account_locks"`)
		m.lockWaitSecs += v
	}
	return m
}

// rss returns the servers' summed VmRSS and VmHWM in MiB.
func (r *runner) rss() (float64, float64) {
	var a, b float64
	for _, p := range r.servers {
		x, y := rssOf(p.pid())
		a, b = a+x, b+y
	}
	return a, b
}

// result is one scenario's figures.
type result struct {
	layout    string
	name      string
	confirms  int
	ok        int
	errors    map[string]int
	p50, p99  time.Duration
	max       time.Duration
	lastOrder time.Duration // from the storm's start to the last order at the simulator
	orders    int           // of this storm's confirmations, orders the simulator holds
	wall      time.Duration
	before    meter
	after     meter
	hsPerSec  float64 // simulator handshakes per second while they ran
	rss, peak float64
	notes     []string
	// probe is what unrelated work saw meanwhile: GET /readyz (one query
	// on the main pool, 2 s time-out) every 250 ms.
	probe probeResult
}

// probeResult is the latencies of the probes and how many failed.
type probeResult struct {
	lat    []time.Duration
	failed int
}

// probe sends GET /readyz to the first target every 250 ms until the
// returned function is called, which reports the probes: what an
// unrelated request (a readiness check, a page's query) waits meanwhile.
func (r *runner) probe(ctx context.Context) func() probeResult {
	var (
		mu   sync.Mutex
		res  probeResult
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			wg.Go(func() {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.targets[0]+"/readyz", nil)
				resp, err := http.DefaultClient.Do(req)
				d := time.Since(t0)
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				res.lat = append(res.lat, d)
				if !ok {
					res.failed++
				}
				mu.Unlock()
			})
		}
	})
	return func() probeResult {
		close(stop)
		wg.Wait()
		slices.Sort(res.lat)
		return res
	}
}

func pct(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l[int(p*float64(len(l)-1))]
}

// storm has every tenant confirm one new signal of ticker, at moments
// spread uniformly over spread (0: all at once), in random order. Latency
// counts from each confirm's planned moment, so a client that falls behind
// does not hide the server's queue.
func (r *runner) storm(ctx context.Context, key, name, ticker string, tenants []tenant, spread time.Duration) (*result, error) {
	signal, err := r.publish(ctx, ticker)
	if err != nil {
		return nil, err
	}
	res := &result{name: name, confirms: len(tenants), errors: map[string]int{}}
	if note := r.ledgerIdle(ctx); note != "" {
		res.notes = append(res.notes, note)
	}
	lat := make([]time.Duration, len(tenants))
	ids := make([]string, len(tenants))
	errc := make([]string, len(tenants))
	order := rand.Perm(len(tenants))
	hs := r.watchHandshakes(ctx)
	r.resetStatements(ctx)
	prof := r.profile(ctx, key, spread)
	waits := r.waits(ctx, key)
	res.before = r.read(ctx)
	pr := r.probe(ctx)
	start := time.Now().Add(100 * time.Millisecond)
	var wg sync.WaitGroup
	for k, i := range order {
		at := start
		if len(tenants) > 1 {
			at = start.Add(time.Duration(int64(spread) * int64(k) / int64(len(tenants))))
		}
		wg.Go(func() {
			time.Sleep(time.Until(at))
			ids[i], errc[i] = r.confirm(ctx, tenants[i], signal, fmt.Sprintf("%s-%s-%d", key, ticker, tenants[i].i))
			lat[i] = time.Since(at)
		})
	}
	wg.Wait()
	res.wall = time.Since(start)
	waitNotes := append([]string{"started at " + start.UTC().Format("15:04:05.000") + " UTC"}, waits()...)
	res.probe = pr()
	res.after = r.read(ctx)
	res.hsPerSec = hs()
	res.rss, res.peak = r.rss()
	if note := prof(); note != "" {
		res.notes = append(res.notes, note)
	}
	res.notes = append(res.notes, r.statements(ctx, len(tenants))...)
	res.notes = append(res.notes, waitNotes...)
	for i := range tenants {
		if errc[i] != "" {
			res.errors[errc[i]]++
		} else {
			res.ok++
		}
	}
	if name, err := r.saveLatencies(key, spread, order, lat); err != nil {
		res.notes = append(res.notes, "latencies: "+err.Error())
	} else {
		res.notes = append(res.notes, "each confirm's planned moment and latency: "+name)
	}
	slices.Sort(lat)
	res.p50, res.p99, res.max = pct(lat, 0.50), pct(lat, 0.99), lat[len(lat)-1]
	orders, err := simOrders(ctx, r.sim)
	if err != nil {
		return nil, err
	}
	mine := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id != "" {
			mine[id] = true
		}
	}
	var last time.Time
	for _, o := range orders {
		if mine[o.COID] {
			res.orders++
			if o.ReceivedAt.After(last) {
				last = o.ReceivedAt
			}
		}
	}
	if !last.IsZero() {
		res.lastOrder = last.Sub(start)
	}
	return res, nil
}

// watchHandshakes samples the simulator's handshake count every 100 ms
// until the returned function is called, which reports the handshakes per
// second between the first and the last sample that saw one.
func (r *runner) watchHandshakes(ctx context.Context) func() float64 {
	type sample struct {
		at time.Time
		n  int64
	}
	var (
		mu      sync.Mutex
		samples []sample
		stop    = make(chan struct{})
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			s := sample{time.Now(), readSimStats(ctx, r.sim).Handshakes}
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	return func() float64 {
		close(stop)
		<-done
		first, last := -1, -1
		for i := 1; i < len(samples); i++ {
			if samples[i].n > samples[i-1].n {
				if first < 0 {
					first = i - 1
				}
				last = i
			}
		}
		if first < 0 {
			return 0
		}
		d := samples[last].at.Sub(samples[first].at).Seconds()
		return float64(samples[last].n-samples[first].n) / d
	}
}

// warmUp gives every tenant a ready session: one pass-through request
// each (handshake, brokerage session, accounts), from workers goroutines.
func (r *runner) warmUp(ctx context.Context, workers int) (*result, error) {
	res := &result{name: "warm-up (pass-through GET, 400 at a time)", confirms: 0, errors: map[string]int{}}
	hs := r.watchHandshakes(ctx)
	res.before = r.read(ctx)
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	lat := make([]time.Duration, len(r.w.tenants))
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(r.w.tenants) {
					return
				}
				t0 := time.Now()
				status, body, err := r.call(ctx, r.w.tenants[i], http.MethodGet, "/api/v1/ibkr/trsrv/stocks?symbols=AAPL", nil, nil)
				lat[i] = time.Since(t0)
				if err != nil || status != http.StatusOK {
					mu.Lock()
					res.errors[fmt.Sprintf("%d %v %.80s", status, err, body)]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	res.after = r.read(ctx)
	res.wall = res.after.at.Sub(res.before.at)
	res.hsPerSec = hs()
	res.rss, res.peak = r.rss()
	slices.Sort(lat)
	res.p50, res.p99, res.max = pct(lat, 0.5), pct(lat, 0.99), lat[len(lat)-1]
	res.ok = len(r.w.tenants) - len(res.errors)
	return res, nil
}

// keepAlive leaves every warm tenant idle for d and reads what the
// servers' keep-alive cost and whether any session was lost.
func (r *runner) keepAlive(ctx context.Context, d time.Duration) *result {
	res := &result{name: fmt.Sprintf("keep-alive: %d idle warm tenants, %v", len(r.w.tenants), d), errors: map[string]int{}}
	ready0 := r.readySessions(ctx)
	res.before = r.read(ctx)
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	res.after = r.read(ctx)
	ready1 := r.readySessions(ctx)
	res.wall = res.after.at.Sub(res.before.at)
	res.rss, res.peak = r.rss()
	res.notes = append(res.notes, fmt.Sprintf("ready sessions (server metric) %d → %d", ready0, ready1))
	return res
}

// readySessions is the servers' count of ready cached sessions.
func (r *runner) readySessions(ctx context.Context) int {
	var n float64
	for _, t := range r.addrs {
		v, _ := metric(ctx, t, "ordertune_ibkr_sessions", `state="ready"`)
		n += v
	}
	return int(n)
}

// soak runs n tenants through a realistic mix for d: each polls a market
// data snapshot through the pass-through every 2 s, its live orders every
// 5 s (IBKR allows one a 5 s) and its confirmation log every 10 s, each with
// jitter; a new signal is published every minute and each tenant confirms
// it at a random moment of that minute.
func (r *runner) soak(ctx context.Context, tenants []tenant, d time.Duration) (*result, error) {
	res := &result{name: fmt.Sprintf("pacing soak: %d tenants, %v", len(tenants), d), errors: map[string]int{}}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	count := map[string]int{}
	note := func(kind string, status int, err error, l time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil {
			return // cut off by the end of the soak
		}
		count[kind]++
		switch {
		case err != nil:
			res.errors[kind+": "+err.Error()]++
		case status >= 300:
			res.errors[fmt.Sprintf("%s: HTTP %d", kind, status)]++
		}
		if kind == "confirm" && err == nil && status < 300 {
			lat = append(lat, l)
		}
	}
	res.before = r.read(ctx)
	var wg sync.WaitGroup
	poll := func(t tenant, kind, path string, every time.Duration) {
		wg.Go(func() {
			wait := rand.N(every)
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				t0 := time.Now()
				status, _, err := r.call(ctx, t, http.MethodGet, path, nil, nil)
				note(kind, status, err, time.Since(t0))
				wait = every/2 + rand.N(every)
			}
		})
	}
	for _, t := range tenants {
		poll(t, "snapshot", "/api/v1/ibkr/iserver/marketdata/snapshot?conids=265598&fields=31,84,86", 2*time.Second)
		poll(t, "live orders", "/api/v1/ibkr/iserver/account/orders", 5*time.Second)
		poll(t, "confirmation log", "/api/v1/confirmations", 10*time.Second)
	}
	tickers := []string{"MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AVGO", "COST", "NFLX", "AMD", "PEP", "ADBE"}
	wg.Go(func() {
		for k := 0; ctx.Err() == nil; k++ {
			minute := time.Now()
			signal, err := r.publish(ctx, tickers[k%len(tickers)])
			if err != nil {
				note("publish", 0, err, 0)
			} else {
				for _, t := range tenants {
					wg.Go(func() {
						select {
						case <-ctx.Done():
							return
						case <-time.After(rand.N(time.Minute)):
						}
						t0 := time.Now()
						_, e := r.confirm(ctx, t, signal, fmt.Sprintf("soak%d-%d", k, t.i))
						var err error
						if e != "" {
							err = fmt.Errorf("%s", e)
						}
						note("confirm", 200, err, time.Since(t0))
					})
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(minute.Add(time.Minute))):
			}
		}
	})
	wg.Wait()
	res.after = r.read(context.Background())
	res.wall = res.after.at.Sub(res.before.at)
	res.rss, res.peak = r.rss()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res.confirms = count["confirm"]
	res.ok = res.confirms
	for k, v := range res.errors {
		if strings.HasPrefix(k, "confirm") {
			res.ok -= v
		}
	}
	if len(lat) > 0 {
		res.p50, res.p99, res.max = pct(lat, 0.5), pct(lat, 0.99), lat[len(lat)-1]
	}
	kinds := make([]string, 0, len(count))
	for k := range count {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		res.notes = append(res.notes, fmt.Sprintf("%s: %d requests", k, count[k]))
	}
	return res, nil
}

// saveLatencies writes each confirm's planned moment (ms from the storm's
// start) and latency (ms) to <layout>-<key>.latencies.csv in the working
// folder, in planned order: the tail's timing, to set beside the server's
// periodic work (lease renewals, the audit sealer, checkpoints).
func (r *runner) saveLatencies(key string, spread time.Duration, order []int, lat []time.Duration) (string, error) {
	name := r.artifact(key, ".latencies.csv")
	var b strings.Builder
	b.WriteString("planned_ms,latency_ms\n")
	for k, i := range order {
		at := time.Duration(0)
		if len(order) > 1 {
			at = time.Duration(int64(spread) * int64(k) / int64(len(order)))
		}
		fmt.Fprintf(&b, "%.1f,%.1f\n", at.Seconds()*1000, lat[i].Seconds()*1000)
	}
	return name, os.WriteFile(name, []byte(b.String()), 0o644)
}

// ledgerIdle waits (at most 5 minutes) until the ledger has no import job
// to run: with --history every tenant has a recent order, so each new
// IBKR session of the warm-up queues an import of its executions, which a
// production server runs long before the market opens. It says how long
// it waited, or "" when there was nothing to wait for.
func (r *runner) ledgerIdle(ctx context.Context) string {
	start := time.Now()
	for {
		var n int
		err := queryRow(ctx, r.ownerDB, `SELECT count(*) FROM river_job WHERE kind LIKE 'ledger.import%'
			AND state IN ('available', 'running', 'retryable', 'scheduled', 'pending')`, &n)
		switch {
		case err != nil:
			return "waiting for the ledger's imports: " + err.Error()
		case n == 0 && time.Since(start) < time.Second:
			return ""
		case n == 0:
			return fmt.Sprintf("waited %.0f s for the ledger's import jobs to finish before the storm", time.Since(start).Seconds())
		case time.Since(start) > 5*time.Minute:
			return fmt.Sprintf("the ledger still had %d import jobs to run after 5 minutes; the storm starts anyway", n)
		}
		time.Sleep(time.Second)
	}
}
