package httpapi

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ledger"
	"github.com/ordertune/ordertune/internal/notify"
	"github.com/ordertune/ordertune/internal/seal"
	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

// features are the services wireAllFeatures built, for fixtures.
type features struct {
	sim     *tradetest.Env
	trading *trading.Service
	notify  *notify.Service
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
	ns, err := notify.New(notify.Config{Pool: d.Pool, Ring: seal.RandomRing("notify"), Log: d.Log, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	d.Notify = ns
	if d.Ledger, err = ledger.New(ledger.Config{Pool: d.Pool, Broker: sim.Broker, RecordFills: ts.RecordFills, Log: d.Log}); err != nil {
		t.Fatal(err)
	}
	return &features{sim: sim, trading: ts, notify: ns}
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
	readyToTrade(t, f.sim, f.trading, owner.user.ID)
	sig := createSignal(t, f.trading, admin.user.ID)
	conf, _, err := f.trading.Confirm(ctx, owner.user.ID, sig.ID, "walk-1", "BUY")
	if err != nil && conf.ID == "" {
		t.Fatalf("fixture confirmation: %v", err)
	}
	ids[apiPrefix+"/confirmations/:id"] = conf.ID
	ids[apiPrefix+"/confirmations/:id/cancel"] = conf.ID

	// An in-app notification and a webhook endpoint of owner's.
	err = pgx.BeginFunc(ctx, env.srv.pool, func(tx pgx.Tx) error {
		id, err := f.notify.Enqueue(ctx, tx, notify.Event{UserID: owner.user.ID, Type: notify.OrderFailed, Data: conf})
		ids[apiPrefix+"/notifications/:id/read"] = id
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := f.notify.CreateEndpoint(ctx, owner.user.ID, notify.NewEndpoint{URL: "http://127.0.0.1:9/hook", EventTypes: []string{notify.OrderFilled}})
	if err != nil {
		t.Fatal(err)
	}
	env.secret(ep.Secret)
	for _, p := range []string{"/webhooks/:id", "/webhooks/:id/test", "/webhooks/:id/deliveries"} {
		ids[apiPrefix+p] = ep.ID
	}
	return ids
}
