package trading_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/trading"
)

// slowContracts counts the broker's contract lookups and holds each for a
// moment, so that confirms made together overlap; it refuses those made
// through refused's session.
type slowContracts struct {
	trading.Broker
	calls   atomic.Int32
	refused string
}

func (b *slowContracts) ResolveContract(ctx context.Context, userID, ticker string) (trading.Contract, error) {
	b.calls.Add(1)
	time.Sleep(300 * time.Millisecond)
	if userID == b.refused {
		return trading.Contract{}, errs.E(errs.BrokerUnavailable, "IBKR did not answer")
	}
	return b.Broker.ResolveContract(ctx, userID, ticker)
}

// contractsWorld is a world whose service asks slowContracts for contracts.
func contractsWorld(t *testing.T) (*world, *trading.Service, *slowContracts) {
	t.Helper()
	w := newWorld(t, fastSim(), nil)
	b := &slowContracts{Broker: w.env.Broker}
	svc, err := trading.New(trading.Config{Pool: w.pool, Broker: b, ReconcileInterval: time.Hour, PendingGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return w, svc, b
}

// confirmAll has each of users confirm signal at once and returns their
// confirmations' statuses.
func confirmAll(t *testing.T, svc *trading.Service, signal string, users []string) []trading.Status {
	t.Helper()
	got := make([]trading.Status, len(users))
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			c, _, _ := svc.Confirm(context.Background(), u, signal, "k", trading.Buy)
			got[i] = c.Status
		})
	}
	wg.Wait()
	return got
}

// The first confirms of a ticker, made together (a market open), ask IBKR
// for its contract once, not once each.
func TestFirstConfirmsOfATickerAskIBKROnce(t *testing.T) {
	t.Parallel()
	w, svc, b := contractsWorld(t)
	users := make([]string, 6)
	for i := range users {
		users[i] = w.subscriber(t, trading.SizeShares, "1")
	}
	for i, st := range confirmAll(t, svc, w.signal(t, nil).ID, users) {
		if st != trading.StatusSubmitted {
			t.Errorf("confirm %d: %s, want submitted", i, st)
		}
	}
	if n := b.calls.Load(); n != 1 {
		t.Errorf("%d contract lookups at IBKR for %d confirms of one ticker, want 1", n, len(users))
	}
}

// When the lookup the others wait for fails (its user's session refused),
// each of them asks through its own session: one user's broken session
// fails only that user's order.
func TestAFailedContractLookupFailsOnlyItsOwnConfirm(t *testing.T) {
	t.Parallel()
	w, svc, b := contractsWorld(t)
	first := w.subscriber(t, trading.SizeShares, "1")
	b.refused = first
	others := []string{w.subscriber(t, trading.SizeShares, "1"), w.subscriber(t, trading.SizeShares, "1")}
	signal := w.signal(t, nil).ID
	firstDone := make(chan trading.Status, 1)
	go func() {
		c, _, _ := svc.Confirm(context.Background(), first, signal, "k", trading.Buy)
		firstDone <- c.Status
	}()
	for deadline := time.Now().Add(10 * time.Second); b.calls.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first confirm never asked for the contract")
		}
	}
	for i, st := range confirmAll(t, svc, signal, others) {
		if st != trading.StatusSubmitted {
			t.Errorf("confirm %d after the first user's failed lookup: %s, want submitted", i, st)
		}
	}
	if st := <-firstDone; st != trading.StatusFailed {
		t.Errorf("the confirm whose lookup failed: %s, want failed", st)
	}
}
