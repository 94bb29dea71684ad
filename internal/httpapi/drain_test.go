package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/trading"
)

// TestShutdownAnswersConfirmsInFlight sends SIGTERM's equivalent (the
// serve context ends) while IBKR takes longer than the shutdown grace to
// answer orders: every confirm in flight is answered 202 with its own
// confirmation before the server closes, and Serve ends cleanly.
func TestShutdownAnswersConfirmsInFlight(t *testing.T) {
	t.Parallel()
	pool, as, sim := newTradeParts(t)
	ts, err := trading.New(trading.Config{Pool: pool, Broker: sim.Broker})
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Deps{Log: zerolog.Nop(), Pool: pool, Auth: as, Trading: ts})
	e := &tradeEnv{pool: pool, sim: sim, auth: as, trading: ts}
	admin := e.user(t, "admin")
	g := createSignal(t, ts, admin.id)
	const n = 4
	var users []user
	for range n {
		u := e.user(t, "subscriber")
		readyToTrade(t, sim, ts, u.id)
		users = append(users, u)
	}
	// IBKR is slow: every order placement waits 6 s, longer than the grace.
	if _, err := sim.Sim.AddFault(ibkrsim.Fault{Kind: ibkrsim.FaultLatency, Path: "/iserver/account/*/orders", Value: json.RawMessage(`"6s"`)}); err != nil {
		t.Fatal(err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	const grace = 2 * time.Second
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l, grace) }()

	type answer struct {
		status int
		body   []byte
		err    error
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, "http://"+l.Addr().String()+"/api/v1/signals/"+g.ID+"/confirm", strings.NewReader(`{"side":"BUY"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", fmt.Sprintf("drain-%d", i))
			req.AddCookie(&http.Cookie{Name: "ordertune_session", Value: u.cookie})
			res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
			if err != nil {
				answers[i].err = err
				return
			}
			defer res.Body.Close()
			answers[i].status = res.StatusCode
			answers[i].body, answers[i].err = io.ReadAll(res.Body)
		}()
	}
	// Every confirm has written its pending row and waits for IBKR.
	deadline := time.Now().Add(15 * time.Second)
	for {
		var pending int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM confirmations WHERE status = 'pending'`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d confirms reached IBKR", pending, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopped := time.Now()
	stop()
	wg.Wait()
	if took := time.Since(stopped); took > grace+time.Second {
		t.Errorf("the confirms were answered %v after the shutdown began, grace %v", took, grace)
	}
	for i, a := range answers {
		if a.err != nil || a.status != http.StatusAccepted {
			t.Errorf("confirm %d: %d %s (%v), want 202", i, a.status, a.body, a.err)
			continue
		}
		var c trading.Confirmation
		if err := json.Unmarshal(a.body, &c); err != nil {
			t.Fatalf("confirm %d: %v", i, err)
		}
		var owner string
		if err := pool.QueryRow(context.Background(), `SELECT user_id FROM confirmations WHERE id = $1 AND idempotency_key = $2`,
			c.ID, fmt.Sprintf("drain-%d", i)).Scan(&owner); err != nil || owner != users[i].id {
			t.Errorf("confirm %d: answered confirmation %q is not its own (%v)", i, c.ID, err)
		}
		if c.Status != trading.StatusPending && c.Status != trading.StatusUnknown {
			t.Errorf("confirm %d: status %q, want pending or unknown", i, c.Status)
		}
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Serve did not return")
	}
}
