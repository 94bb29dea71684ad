package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/config"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ibkrsim/simtest"
	"github.com/ordertune/ordertune/internal/ledger"
	"github.com/ordertune/ordertune/internal/market"
	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/trading"
)

// TestReconnectImportsMissedFill runs serve's wiring against the simulator:
// a tenant's first session, before any order, imports nothing; a fill
// that order polling never sees (hide_fills) is recovered once the
// tenant's IBKR session is re-established — a 401 repaired with a new
// token, then IBKR's restart window ending the brokerage session, which is
// re-opened — without waiting for a sweep, and those two reconnects make
// one import.
func TestReconnectImportsMissedFill(t *testing.T) {
	sim := ibkrsim.New(ibkrsim.Config{})
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)
	simPost := func(path string, body any) {
		t.Helper()
		b, _ := json.Marshal(body)
		resp, err := http.Post(simSrv.URL+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %d", path, resp.StatusCode)
		}
	}

	key := make([]byte, 32)
	rand.Read(key)
	vars := map[string]string{
		"DATABASE_URL":               pgtest.DB(t),
		"ORDERTUNE_ADDR":             freeAddr(t),
		"ORDERTUNE_MASTER_KEYS":      "k1:" + base64.StdEncoding.EncodeToString(key),
		"ORDERTUNE_IBKR_BASE_URL":    simSrv.URL + ibkrsim.APIPrefix,
		"ORDERTUNE_IBKR_MAINTENANCE": "none",
	}
	cfg, err := config.Load(func(k string) string { return vars[k] }, false)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := postgres.Open(t.Context(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	logs := &syncBuffer{}
	svc, err := build(cfg, zerolog.New(logs), pool)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, w := range svc.workers {
		wg.Add(1)
		go func() { defer wg.Done(); w(wctx) }()
	}
	t.Cleanup(func() {
		stop()
		wg.Wait()
		for _, c := range svc.closers {
			c()
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})

	ctx := t.Context()
	admin, _, err := svc.auth.CreateUserWithTOTP(ctx, auth.NewUser{Email: "admin@example.com", Role: auth.Admin, Password: "admin password 1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	_, userID := e2eUser(t, svc, "reconnect@example.com")
	consumer, creds := simtest.Register(t, "DU5550002")
	if err := sim.AddConsumer(consumer); err != nil {
		t.Fatal(err)
	}
	in := broker.Input{ConsumerKey: creds.ConsumerKey, AccessToken: creds.AccessToken, AccessTokenSecret: creds.AccessTokenSecret,
		SignatureKeyPEM: creds.SignaturePrivateKeyPEM, EncryptionKeyPEM: creds.EncryptionPrivateKeyPEM,
		DHParams: creds.DHPrimeHex, AccountID: creds.AccountID}
	if _, err := svc.broker.Save(ctx, userID, broker.Paper, in, broker.Actor{UserID: userID}); err != nil {
		t.Fatal(err)
	}
	seven := "7"
	if _, err := svc.trading.SetPositionSize(ctx, userID, trading.PositionSize{Mode: "shares", Value: &seven}); err != nil {
		t.Fatal(err)
	}
	aapl, _ := sim.Security("AAPL")
	clock := market.Default()
	signal, err := svc.trading.CreateSignal(ctx, admin.ID, trading.NewSignal{Ticker: "AAPL", Strategy: "I", Kind: "entry",
		SignalDate: clock.Now().In(clock.Location()).Format(time.DateOnly), EntryDate: entryDate(clock, trading.NextOpenMarket),
		RefClose: fmt.Sprintf("%.2f", aapl.RefPrice), RSI2: "6.2", Return2D: "-0.0241", EntryMode: trading.NextOpenMarket})
	if err != nil {
		t.Fatal(err)
	}

	jobs := func() []string {
		t.Helper()
		rows, err := pool.Query(ctx, `
			SELECT kind || ' ' || coalesce(args->>'reason', '') || ' ' || state FROM river_job
			WHERE kind IN ($1, $2) AND args->>'user_id' = $3 ORDER BY id`,
			ledger.ReconnectArgs{}.Kind(), ledger.ImportArgs{}.Kind(), userID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for %s; import jobs %q", what, jobs())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	kind := ledger.ReconnectArgs{}.Kind()

	call := func() {
		t.Helper()
		err := svc.broker.Cache().Do(ctx, userID, func(ctx context.Context, s *ibkr.Session, _ broker.Conn) error {
			_, err := s.Accounts(ctx)
			return err
		})
		if err != nil {
			t.Fatalf("a call through the session: %v", err)
		}
	}
	// The ledger's sweep at start (river's leader runs it once elected,
	// a few seconds in) would import the fill this test hides: let it run
	// first, while the tenant has no order.
	waitFor("the sweep at start-up", func() bool {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = $1 AND state = 'completed'`,
			ledger.SweepArgs{}.Kind()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	})

	// The tenant's first session, before any order: nothing to import
	// (the reconnect is handed over at once; the queue's worker sees no
	// orders well within the second).
	call()
	time.Sleep(time.Second)
	conf, _, err := svc.trading.Confirm(ctx, userID, signal.ID, "reconnect-key", trading.Buy)
	if err != nil || conf.Status != trading.StatusSubmitted {
		t.Fatalf("confirm: %v, %s", err, conf.Status)
	}

	// The fill happens at IBKR, but polling sees the order working.
	simPost("/sim/faults", ibkrsim.Fault{Kind: ibkrsim.FaultHideFills})
	simPost("/sim/auction/open", map[string]any{"prices": map[string]float64{"AAPL": 201.23}})
	time.Sleep(2 * time.Second)
	if c, err := svc.trading.Confirmation(ctx, userID, conf.ID); err != nil || c.Status != trading.StatusSubmitted {
		t.Fatalf("with the fill hidden: %v, %s", err, c.Status)
	}

	if got := jobs(); len(got) != 0 {
		t.Fatalf("import jobs before any reconnect with orders: %q", got)
	}

	// IBKR refuses the token (a 401 on the next request): a new one is
	// made, and its import queued.
	simPost("/sim/faults", ibkrsim.Fault{Kind: ibkrsim.FaultInvalidLST, Count: 1, ConsumerKey: creds.ConsumerKey})
	call()
	waitFor("the repair's import to be queued", func() bool { return len(jobs()) == 1 })
	// IBKR's restart window ends the brokerage session too; it is
	// re-opened on the same token before the import ran.
	before := sim.Stats()[creds.ConsumerKey]
	simPost("/sim/maintenance/start", nil)
	simPost("/sim/maintenance/end", nil)
	call()
	if after := sim.Stats()[creds.ConsumerKey]; after.Inits != before.Inits+1 || after.Handshakes != before.Handshakes {
		t.Fatalf("after IBKR's restart window: %+v, before %+v; want the brokerage session re-opened on the same token", after, before)
	}

	waitFor("the fill to be recovered", func() bool {
		c, err := svc.trading.Confirmation(ctx, userID, conf.ID)
		return err == nil && c.Status == trading.StatusFilled && c.AvgFillPrice != nil && *c.AvgFillPrice == "201.23"
	})
	waitFor("the import to complete", func() bool { return jobs()[len(jobs())-1] == kind+" repair completed" })
	if diff := cmp.Diff([]string{kind + " repair completed"}, jobs()); diff != "" {
		t.Errorf("import jobs (-want +got):\n%s", diff)
	}
}
