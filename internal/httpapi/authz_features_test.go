package httpapi

import (
	"context"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

// features are the services wireAllFeatures built, for fixtures.
type features struct {
	sim     *tradetest.Env
	trading *trading.Service
}

// wireAllFeatures gives d every feature's service, so the route walk in
// TestRoutesRefuseWhatTheTableRefuses reaches real handlers (a tenant
// check needs the handler to look the id up). Each feature adds its own
// lines here.
func wireAllFeatures(t testing.TB, d *Deps) *features {
	t.Helper()
	sim := tradetest.NewEnv(t, ibkrsim.Config{}, tradetest.SimBrokerOptions{})
	ts, err := trading.New(trading.Config{Pool: d.Pool, Broker: sim.Broker, Log: d.Log})
	if err != nil {
		t.Fatal(err)
	}
	d.Trading = ts
	return &features{sim: sim, trading: ts}
}

// foreignIDs returns, for tenant routes (by echo path), the id of a real
// resource that owner holds, so the walk asks for another tenant's row
// rather than a made-up id. Routes without an entry get an unknown UUID.
// Each feature adds the fixtures of its routes here.
func foreignIDs(t *testing.T, env *authEnv, admin, owner account) map[string]string {
	t.Helper()
	ctx := context.Background()
	f := env.features
	ids := map[string]string{}

	// A confirmation of owner's.
	f.sim.Connect(t, owner.user.ID, "")
	five := "5"
	if _, err := f.trading.SetPositionSize(ctx, owner.user.ID, trading.PositionSize{Mode: trading.SizeShares, Value: &five}); err != nil {
		t.Fatal(err)
	}
	sig, err := f.trading.CreateSignal(ctx, admin.user.ID, trading.NewSignal{Ticker: "AAPL", Strategy: "II", Kind: "entry",
		SignalDate: "2026-11-20", EntryDate: time.Now().AddDate(0, 0, 7).Format(time.DateOnly), RefClose: "187.25", RSI2: "3.1", Return2D: "-0.042",
		EntryMode: "next_open_market", ExpiresAt: time.Now().Add(time.Hour).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	conf, _, err := f.trading.Confirm(ctx, owner.user.ID, sig.ID, "walk-1", "BUY")
	if err != nil && conf.ID == "" {
		t.Fatalf("fixture confirmation: %v", err)
	}
	ids[apiPrefix+"/confirmations/:id"] = conf.ID
	ids[apiPrefix+"/confirmations/:id/cancel"] = conf.ID
	return ids
}
