package trading_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/logging/logtest"
	"github.com/ordertune/ordertune/internal/trading"
)

// lookupsRefused is a broker whose order lookups are refused with err.
type lookupsRefused struct {
	trading.Broker
	err error
}

func (b lookupsRefused) OrderStatus(context.Context, string, string) (trading.OrderState, error) {
	return trading.OrderState{}, b.err
}

func (b lookupsRefused) LiveOrders(context.Context, string) ([]trading.OrderState, error) {
	return nil, b.err
}

func (b lookupsRefused) Executions(context.Context, string, int) ([]trading.Execution, error) {
	return nil, b.err
}

// While another login holds a user's IBKR session, reconciliation's
// passes say so as information, not as a warning every pass: the user
// chose it, and their orders are looked up once it is free. Any other
// failure still warns.
func TestReconcilerQuietWhileAnotherLoginHoldsTheSession(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err          error
		level, about string
	}{
		{errs.E(errs.BrokerSessionCompeting, "your IBKR session is in use by another login"), "info", "another login holds"},
		{errs.E(errs.BrokerUnavailable, "IBKR did not answer"), "warn", "reconciliation pass failed"},
	} {
		w := newWorld(t, fastSim(), nil)
		u := w.subscriber(t, trading.SizeShares, "1")
		if _, _, err := w.svc.Confirm(context.Background(), u, w.signal(t, nil).ID, "k", "BUY"); err != nil {
			t.Fatal(err)
		}
		var sink logtest.Sink
		svc, err := trading.New(trading.Config{Pool: w.pool, Broker: lookupsRefused{Broker: w.env.Broker, err: tc.err},
			ReconcileInterval: 20 * time.Millisecond, PendingGrace: time.Second, Log: zerolog.New(&sink)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { svc.RunReconciler(ctx); close(done) }()
		var got []string
		for deadline := time.Now().Add(20 * time.Second); len(got) == 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no failed pass logged in 20 s; the log:\n%s", errs.CodeOf(tc.err), sink.String())
			}
			for _, line := range strings.Split(sink.String(), "\n") {
				var e struct{ Level, Message, Error string }
				if json.Unmarshal([]byte(line), &e) == nil && strings.Contains(e.Error, string(errs.CodeOf(tc.err))) {
					got = append(got, e.Level+": "+e.Message)
				}
			}
		}
		cancel()
		<-done
		for _, g := range got {
			if !strings.HasPrefix(g, tc.level+": ") || !strings.Contains(g, tc.about) {
				t.Errorf("%s: logged %q, want %s saying %q", errs.CodeOf(tc.err), g, tc.level, tc.about)
			}
		}
	}
}
