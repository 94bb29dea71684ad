package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ibkrsim/simtest"
	"github.com/ordertune/ordertune/internal/market"
	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/replicatest"
	"github.com/ordertune/ordertune/internal/seal"
	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

// fleet is the replicas test's world: one PostgreSQL, one simulator, the
// replicas and nginx in front of them, and the tenants.
type fleet struct {
	t        testing.TB
	pool     *pgxpool.Pool
	sim      *ibkrsim.Server
	trading  *trading.Service
	admin    string
	replicas []*replicatest.Replica
	nginx    string
	tenants  []tenantClient
	signals  int
	logs     string // the replicas' output, one file per start
	// killed is set once a replica was killed mid-burst: confirmations
	// whose order never left it may exist from then on.
	killed atomic.Bool
}

// tenantClient is one subscriber: a signed-in session and its consumer.
type tenantClient struct {
	userID, session, consumer string
}

// newFleet seeds n tenants (credentials saved, a position size, a full
// session) and starts replicas `ordertune serve` processes.
func newFleet(t testing.TB, n, replicas int) *fleet {
	ctx := context.Background()
	dbURL := pgtest.DB(t)
	pool, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	key := testMasterKey(t)
	ring, err := seal.ParseRing(key)
	if err != nil {
		t.Fatal(err)
	}
	sim, srv := simtest.Serve(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}})
	base := srv.URL + ibkrsim.APIPrefix
	bs, err := broker.New(broker.Config{Pool: pool, Ring: ring, IBKR: ibkr.Options{BaseURL: base}})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := trading.New(trading.Config{Pool: pool, Broker: bs.Orders()})
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{t: t, pool: pool, sim: sim, trading: ts, admin: tradetest.NewUser(t, pool, "admin")}
	one := "1"
	for range n {
		u := tradetest.NewUser(t, pool, "subscriber")
		uc := simtest.AddConsumer(t, sim, "")
		in := broker.Input{ConsumerKey: uc.ConsumerKey, AccessToken: uc.AccessToken, AccessTokenSecret: uc.AccessTokenSecret,
			SignatureKeyPEM: uc.SignaturePrivateKeyPEM, EncryptionKeyPEM: uc.EncryptionPrivateKeyPEM, DHParams: uc.DHPrimeHex, AccountID: uc.AccountID}
		if _, err := bs.Save(ctx, u, broker.Paper, in, broker.Actor{UserID: u}); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.SetPositionSize(ctx, u, trading.PositionSize{Mode: trading.SizeShares, Value: &one}); err != nil {
			t.Fatal(err)
		}
		f.tenants = append(f.tenants, tenantClient{userID: u, session: newSession(t, pool, u), consumer: uc.ConsumerKey})
	}

	logs := t.TempDir()
	f.logs = logs
	for i := range replicas {
		addr := replicatest.FreeAddr(t)
		r := &replicatest.Replica{Name: fmt.Sprintf("r%d", i), Addr: addr, LogDir: logs, Argv: []string{os.Args[0], "serve"},
			Env: []string{runAsCommand + "=1", "DATABASE_URL=" + dbURL, "ORDERTUNE_MASTER_KEYS=" + key, "ORDERTUNE_ADDR=" + addr,
				"ORDERTUNE_IBKR_BASE_URL=" + base, "ORDERTUNE_LOG_LEVEL=warn", "ORDERTUNE_PENDING_GRACE=2s",
				"ORDERTUNE_SHUTDOWN_TIMEOUT=10s", "ORDERTUNE_LEASE_TTL=10s", "ORDERTUNE_ORDER_LOCK_CONNS=8",
				// IBKR's nightly restart must not fall into the test.
				"ORDERTUNE_IBKR_MAINTENANCE=Sun 12:00-Sun 12:01"}}
		t.Cleanup(r.Cleanup)
		f.replicas = append(f.replicas, r)
	}
	var wg sync.WaitGroup
	for _, r := range f.replicas {
		wg.Add(1)
		go func() { defer wg.Done(); r.Start(t) }()
	}
	wg.Wait()
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range f.replicas {
				for i := 1; i <= 4; i++ {
					if b, err := os.ReadFile(fmt.Sprintf("%s/%s-%d.log", logs, r.Name, i)); err == nil && len(b) > 0 {
						t.Logf("%s, start %d:\n%s", r.Name, i, tail(b, 4000))
					}
				}
			}
		}
	})
	return f
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// newSession stores a fully signed-in session for u, as login and TOTP
// would, and returns the cookie's value.
func newSession(t testing.TB, pool *pgxpool.Pool, u string) string {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	id := hex.EncodeToString(b)
	h := sha256.Sum256([]byte(id))
	if _, err := pool.Exec(context.Background(), `
		INSERT INTO sessions (id_hash, user_id, full_auth, device_trusted, created_at, last_seen_at, ip)
		VALUES ($1, $2, true, false, now(), now(), '127.0.0.1')`, h[:], u); err != nil {
		t.Fatal(err)
	}
	return id
}

// signal publishes a fresh entry signal open for a week.
func (f *fleet) signal() string {
	f.t.Helper()
	f.signals++
	_, day := market.Default().CutoffOn(market.Open, time.Now().AddDate(0, 0, 7))
	g, err := f.trading.CreateSignal(context.Background(), f.admin, trading.NewSignal{
		Ticker:   []string{"AAPL", "MSFT", "NVDA", "AMZN", "META", "GOOGL", "TSLA", "AVGO", "COST"}[f.signals%9],
		Strategy: []string{"I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX"}[(f.signals/9)%9],
		Kind:     "entry", SignalDate: time.Now().Format(time.DateOnly), EntryDate: day.Date.Format(time.DateOnly),
		RefClose: "187.25", RSI2: "4.5", Return2D: "-0.031", EntryMode: trading.NextOpenMarket, ExpiresAt: time.Now().Add(24 * time.Hour),
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return g.ID
}

// confirmResult is one confirm request's answer.
type confirmResult struct {
	status int
	id     string
	// confStatus is the answered confirmation's status.
	confStatus string
	err        error
	latency    time.Duration
	done       time.Time
	tries      int
}

var confirmClient = &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

// confirm posts one Confirm Buy through base; with retry it repeats the
// request (same Idempotency-Key) while the answer is a transport error or
// a 502/503/504, as a client of a restarting service does, until deadline.
func confirm(base string, tc tenantClient, signalID, key string, retry time.Duration) confirmResult {
	start := time.Now()
	res := confirmResult{}
	for {
		res.tries++
		req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/signals/"+signalID+"/confirm", strings.NewReader(`{"side":"BUY"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		req.AddCookie(&http.Cookie{Name: "ordertune_session", Value: tc.session})
		resp, err := confirmClient.Do(req)
		res.err, res.status = err, 0
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			res.status = resp.StatusCode
			var c struct {
				ID           string
				Status       string
				Confirmation *struct{ ID, Status string }
			}
			_ = json.Unmarshal(body, &c)
			res.id, res.confStatus = c.ID, c.Status
			if c.Confirmation != nil {
				// A failed confirmation is answered as a problem that
				// carries it: recorded, final.
				res.id, res.confStatus = c.Confirmation.ID, c.Confirmation.Status
			}
			if res.status/100 != 2 {
				res.err = fmt.Errorf("status %d: %s", res.status, body)
			}
		}
		transient := res.confStatus == "" && (err != nil || res.status == http.StatusBadGateway ||
			res.status == http.StatusServiceUnavailable || res.status == http.StatusGatewayTimeout)
		if !transient || retry == 0 || time.Since(start) > retry {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	res.latency, res.done = time.Since(start), time.Now()
	return res
}

// ownedBy returns the tenants whose session lease r holds.
func (f *fleet) ownedBy(r *replicatest.Replica) []tenantClient {
	f.t.Helper()
	owned := map[string]bool{}
	rows, err := f.pool.Query(context.Background(), `SELECT user_id::text FROM broker_session_leases WHERE owner_url = $1 AND expires_at > now()`,
		"http://"+r.Addr)
	if err != nil {
		f.t.Fatal(err)
	}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			f.t.Fatal(err)
		}
		owned[u] = true
	}
	var out []tenantClient
	for _, tc := range f.tenants {
		if owned[tc.userID] {
			out = append(out, tc)
		}
	}
	return out
}

// burstLimited confirms signalID for every tenant, at most limit at a time.
func (f *fleet) burstLimited(base, signalID string, limit int) []confirmResult {
	out := make([]confirmResult, len(f.tenants))
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, tc := range f.tenants {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = confirm(base, tc, signalID, "k-"+signalID+"-"+tc.userID, 0)
		}()
	}
	wg.Wait()
	return out
}

// burst confirms signalID for every tenant at once through base; onDone,
// when set, is called after each answer.
func (f *fleet) burst(base, signalID string, retry time.Duration, onDone func()) []confirmResult {
	return f.burstOfThen(base, signalID, retry, f.tenants, onDone)
}

// burstOf confirms signalID for the tenants ts at once.
func (f *fleet) burstOf(base, signalID string, retry time.Duration, ts []tenantClient) []confirmResult {
	return f.burstOfThen(base, signalID, retry, ts, nil)
}

func (f *fleet) burstOfThen(base, signalID string, retry time.Duration, ts []tenantClient, onDone func()) []confirmResult {
	out := make([]confirmResult, len(ts))
	var wg sync.WaitGroup
	for i, tc := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = confirm(base, tc, signalID, "k-"+signalID+"-"+tc.userID, retry)
			if onDone != nil {
				onDone()
			}
		}()
	}
	wg.Wait()
	return out
}

func (f *fleet) mustAllSucceed(what string, rs []confirmResult) {
	f.t.Helper()
	f.mustAllAnswer(what, rs, false)
}

// mustAllAnswer fails unless every confirm was answered with its
// confirmation: a success, or with failedOK also a recorded failure (a
// confirm whose replica died before anything was sent to IBKR).
func (f *fleet) mustAllAnswer(what string, rs []confirmResult, failedOK bool) {
	f.t.Helper()
	failed, recorded := 0, 0
	for i, r := range rs {
		if failedOK && r.id != "" && r.confStatus == "failed" {
			recorded++
			continue
		}
		if r.err != nil || r.id == "" {
			failed++
			if failed <= 5 {
				f.t.Errorf("%s: tenant %d: %v (after %d tries)", what, i, r.err, r.tries)
			}
		}
	}
	if failed > 0 {
		f.t.Fatalf("%s: %d of %d confirms failed", what, failed, len(rs))
	}
	if recorded > 0 {
		f.t.Logf("%s: %d confirms answered as failed (nothing sent to IBKR)", what, recorded)
	}
}

// percentiles returns p50 and p99 of the results' latencies.
func percentiles(rs []confirmResult) (p50, p99 time.Duration) {
	ls := make([]time.Duration, len(rs))
	for i, r := range rs {
		ls[i] = r.latency
	}
	slices.Sort(ls)
	return ls[len(ls)/2], ls[min(len(ls)-1, len(ls)*99/100)]
}

// checkOrders proves exactly one order per confirmation at the simulator:
// every order's cOID is one confirmation of this signal, no cOID twice,
// and wantOrders orders in all.
func (f *fleet) checkOrders(signalID string, wantOrders int) {
	f.t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT id::text, status FROM confirmations WHERE signal_id = $1`, signalID)
	if err != nil {
		f.t.Fatal(err)
	}
	status := map[string]string{}
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			f.t.Fatal(err)
		}
		status[id] = st
	}
	if rows.Err() != nil {
		f.t.Fatal(rows.Err())
	}
	seen := map[string]int{}
	n := 0
	for _, o := range f.sim.Orders() {
		if _, ok := status[o.COID]; !ok {
			continue
		}
		seen[o.COID]++
		n++
	}
	for coid, k := range seen {
		if k != 1 {
			f.t.Errorf("confirmation %s has %d orders at the simulator, want 1", coid, k)
		}
	}
	if len(status) != wantOrders {
		f.t.Errorf("signal %s: %d confirmation rows, want %d", signalID, len(status), wantOrders)
	}
	// A row without an order is one whose request died with a killed
	// replica before its order left: it must say "unknown", never a
	// status that claims IBKR has the order or that it failed.
	unsent := 0
	for id, st := range status {
		if seen[id] == 0 {
			unsent++
			if st != "unknown" {
				f.t.Errorf("confirmation %s has no order at the simulator but status %q, want unknown", id, st)
			}
		}
	}
	if n+unsent != len(status) || (!f.killed.Load() && unsent > 0) {
		f.t.Errorf("signal %s: %d orders at the simulator for %d confirmation rows (%d never sent)", signalID, n, len(status), unsent)
	}
}

// checkSessions proves one owner per tenant session: no superseded-token
// refusal, no competing take-over, and at most maxHandshakes per tenant.
func (f *fleet) checkSessions(what string, maxHandshakes int64) {
	f.t.Helper()
	stats := f.sim.Stats()
	var over, superseded, takeovers int64
	for _, tc := range f.tenants {
		s := stats[tc.consumer]
		if s.Handshakes > maxHandshakes {
			over++
		}
		superseded += s.SupersededLSTRefusals
		takeovers += s.CompetingTakeovers
	}
	if over > 0 || superseded > 0 || takeovers > 0 {
		f.t.Errorf("%s: %d tenants with more than %d handshakes, %d superseded-token refusals, %d competing take-overs; want none",
			what, over, maxHandshakes, superseded, takeovers)
	}
}

// checkNoLeaseLost fails unless no replica reported a session lease lost:
// while every replica renews in time, none may give a tenant up (a false
// loss drops the tenant's session, and its next request hand-shakes
// again).
func (f *fleet) checkNoLeaseLost(what string) {
	f.t.Helper()
	files, err := filepath.Glob(filepath.Join(f.logs, "*.log"))
	if err != nil {
		f.t.Fatal(err)
	}
	var lost []string
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			if strings.Contains(line, "session lease lost") {
				lost = append(lost, filepath.Base(name)+": "+line)
			}
		}
	}
	for i, l := range lost {
		if i < 5 {
			f.t.Error(l)
		}
	}
	if len(lost) > 0 {
		f.t.Errorf("%s: %d session leases reported lost, want none", what, len(lost))
	}
}

// waitSettled waits until reconciliation has settled the confirmations of
// signalID whose request died with a replica: none is still pending, and
// every unknown one whose order reached IBKR (the simulator has its cOID)
// has its outcome. An unknown one whose order never reached IBKR stays
// unknown by design: reconciliation marks nothing failed without
// evidence, and IBKR's order list is no proof of absence.
func (f *fleet) waitSettled(signalID string, within time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for {
		rows, err := f.pool.Query(context.Background(), `SELECT id::text, status FROM confirmations WHERE signal_id = $1 AND status IN ('pending', 'unknown')`,
			signalID)
		if err != nil {
			f.t.Fatal(err)
		}
		open := map[string]string{}
		for rows.Next() {
			var id, st string
			if err := rows.Scan(&id, &st); err != nil {
				f.t.Fatal(err)
			}
			open[id] = st
		}
		if rows.Err() != nil {
			f.t.Fatal(rows.Err())
		}
		sent := map[string]bool{}
		for _, o := range f.sim.Orders() {
			sent[o.COID] = true
		}
		var unsettled, neverSent int
		for id, st := range open {
			switch {
			case st == "pending" || sent[id]:
				unsettled++
			default:
				neverSent++
			}
		}
		if unsettled == 0 {
			if neverSent > 0 {
				f.t.Logf("signal %s: %d confirmations stay unknown: their order never reached IBKR", signalID, neverSent)
			}
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("signal %s: %d confirmations still pending, or unknown with an order at IBKR, after %s", signalID, unsettled, within)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestReplicasBehindNginx is issue 18's proof: three `ordertune serve`
// processes on one PostgreSQL and one simulator, a real nginx balancing
// round robin in front of them, 200 tenants.
func TestReplicasBehindNginx(t *testing.T) {
	const tenants = 200
	f := newFleet(t, tenants, 3)
	var upstreams []string
	for _, r := range f.replicas {
		upstreams = append(upstreams, r.Addr)
	}
	f.nginx = replicatest.StartNginx(t, upstreams)

	// Each tenant's first confirm makes its session (at most 32 cold ones
	// at a time: see the report on cold bursts in scripts/BENCHMARKS.md);
	// then every tenant confirms at once, twice: one handshake per tenant,
	// every confirm answered once, one order per confirmation.
	first := f.signal()
	f.mustAllSucceed("first confirms", f.burstLimited(f.nginx, first, 32))
	f.checkOrders(first, tenants)
	for round := 1; round <= 2; round++ {
		sig := f.signal()
		rs := f.burst(f.nginx, sig, 0, nil)
		f.mustAllSucceed(fmt.Sprintf("round %d", round), rs)
		f.checkOrders(sig, tenants)
		p50, p99 := percentiles(rs)
		t.Logf("round %d, 3 replicas through nginx, %d tenants at once: confirm p50 %s, p99 %s", round, tenants, p50, p99)
	}
	f.checkSessions("three rounds", 1)
	f.checkNoLeaseLost("three rounds")
	f.haltSeenAcross(f.replicas[1], f.replicas[2])

	// SIGKILL one replica in the middle of a burst; right after it, every
	// tenant confirms a new signal: the killed replica's tenants too,
	// through the others, within 20 s of the kill. No order is lost or
	// doubled: every order at the simulator has exactly one confirmation
	// row. "Every row settles" reads, as deploy/README.md says: every row
	// whose order reached IBKR gets its outcome from reconciliation; a row
	// whose order never left the killed replica is found nowhere at IBKR
	// and stays "unknown" by design — never "failed" without evidence,
	// never claiming an order (waitSettled, checkOrders).
	sig := f.signal()
	after := f.signal()
	killedTenants := f.ownedBy(f.replicas[0])
	if len(killedTenants) == 0 {
		t.Fatal("the replica to kill owns no tenant")
	}
	var answered atomic.Int64
	killed := make(chan time.Time, 1)
	var rsAfter []confirmResult
	var afterDone sync.WaitGroup
	afterDone.Add(1)
	rs := f.burst(f.nginx, sig, 60*time.Second, func() {
		if answered.Add(1) == tenants/4 {
			f.replicas[0].Kill()
			f.killed.Store(true)
			killed <- time.Now()
			go func() { defer afterDone.Done(); rsAfter = f.burstOf(f.nginx, after, 30*time.Second, killedTenants) }()
		}
	})
	killedAt := <-killed
	afterDone.Wait()
	f.mustAllAnswer("burst with a replica killed", rs, true)
	f.mustAllSucceed("the killed replica's tenants confirming right after the kill", rsAfter)
	var last time.Time
	for _, r := range rsAfter {
		if r.done.After(last) {
			last = r.done
		}
	}
	if took := last.Sub(killedAt); took > 20*time.Second {
		t.Errorf("the killed replica's tenants confirmed again %s after the kill, want within 20 s", took)
	}
	t.Logf("kill: every tenant confirmed again %s after the SIGKILL", last.Sub(killedAt).Round(time.Millisecond))
	f.waitSettled(sig, 90*time.Second)
	f.checkOrders(sig, tenants)
	f.waitSettled(after, 90*time.Second)
	f.checkOrders(after, len(killedTenants))
	// The survivors took the killed replica's tenants over: one more
	// handshake each for those, never a fight.
	f.checkSessions("after the kill", 2)
	f.checkNoLeaseLost("after the kill")

	// The audit chain still verifies.
	v, err := audit.Verify(context.Background(), f.pool)
	if err != nil || !v.OK {
		t.Fatalf("audit chain: %+v, %v", v, err)
	}

	// Rolling restart under a steady load: no confirm fails. The killed
	// replica comes back first.
	f.replicas[0].Start(t)
	f.rollingRestart(t)
	f.checkSessions("after the rolling restart", 6)

	// The same confirms with one replica (the others stopped gracefully),
	// for scripts/BENCHMARKS.md: the first round moves the tenants here,
	// the second is measured.
	for _, r := range f.replicas[1:] {
		r.Stop(20 * time.Second)
	}
	one := replicatest.StartNginx(t, []string{f.replicas[0].Addr})
	for round := 1; round <= 2; round++ {
		sig := f.signal()
		rs := f.burst(one, sig, 0, nil)
		f.mustAllSucceed(fmt.Sprintf("one replica, round %d", round), rs)
		p50, p99 := percentiles(rs)
		t.Logf("one replica through nginx, round %d, %d tenants at once: confirm p50 %s, p99 %s", round, tenants, p50, p99)
	}
}

// haltSeenAcross is issue 16's halt across processes: an admin halts paper
// trading through the replica set, and the next confirm sent straight to
// the replica other — the one holding the tenant's IBKR session, so it
// decides the confirm itself — is refused with trading_halted, nothing
// sent; once the halt is lifted (through set again), the same tenant's
// confirm goes through there.
func (f *fleet) haltSeenAcross(set, other *replicatest.Replica) {
	f.t.Helper()
	owned := f.ownedBy(other)
	if len(owned) == 0 {
		f.t.Fatalf("replica %s owns no tenant", other.Name)
	}
	tc := owned[0]
	admin := newSession(f.t, f.pool, f.admin)
	h := sha256.Sum256([]byte(admin))
	// Every admin write needs a step-up: this session made one just now.
	if _, err := f.pool.Exec(context.Background(), `UPDATE sessions SET step_up_until = now() + interval '5 minutes' WHERE id_hash = $1`, h[:]); err != nil {
		f.t.Fatal(err)
	}
	put := func(body string) {
		f.t.Helper()
		req, _ := http.NewRequest(http.MethodPut, "http://"+set.Addr+"/api/v1/admin/risk", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.AddCookie(&http.Cookie{Name: "ordertune_session", Value: admin})
		resp, err := confirmClient.Do(req)
		if err != nil {
			f.t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			f.t.Fatalf("PUT /admin/risk %s on %s: %d %s", body, set.Name, resp.StatusCode, b)
		}
	}
	sig := f.signal()
	put(`{"halted":{"paper":true},"halt_reason":"replicas test"}`)
	halted := time.Now()
	r := confirm("http://"+other.Addr, tc, sig, "halted-"+sig, 0)
	if (r.status != http.StatusForbidden && r.status != http.StatusConflict) || r.err == nil || !strings.Contains(r.err.Error(), "trading_halted") {
		f.t.Errorf("confirm on %s right after a halt set through %s: %d %v, want trading_halted", other.Name, set.Name, r.status, r.err)
	}
	f.t.Logf("halt: set through %s, the next confirm on %s answered %s later", set.Name, other.Name, time.Since(halted).Round(time.Millisecond))
	put(`{"halted":{"paper":false},"halt_reason":""}`)
	if r := confirm("http://"+other.Addr, tc, sig, "lifted-"+sig, 0); r.err != nil {
		f.t.Errorf("confirm on %s after the halt was lifted: %v", other.Name, r.err)
	}
	f.checkOrders(sig, 1)
}

// rollingRestart stops (SIGTERM) and restarts each replica in turn while
// tenants keep confirming through nginx, without retries of their own.
func (f *fleet) rollingRestart(t *testing.T) {
	stop := make(chan struct{})
	var failed, ok atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	sig := f.signal()
	next := atomic.Int64{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := int(next.Add(1)-1) % len(f.tenants)
				tc := f.tenants[i]
				r := confirm(f.nginx, tc, sig, fmt.Sprintf("roll-%s-%s", sig, tc.userID), 0)
				if r.err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, r.err.Error())
				} else {
					ok.Add(1)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	for _, r := range f.replicas {
		time.Sleep(time.Second)
		if !r.Stop(20 * time.Second) {
			t.Errorf("%s did not stop within its grace", r.Name)
		}
		r.Start(t)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("rolling restart: %d confirms answered, %d failed", ok.Load(), failed.Load())
	if failed.Load() > 0 {
		t.Errorf("rolling restart: %d confirms failed, want 0; first: %v", failed.Load(), firstErr.Load())
	}
	if ok.Load() == 0 {
		t.Error("rolling restart: no confirm answered")
	}
}
