package httpapi

import (
	"testing"

	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

// wireAllFeatures gives d every feature's service, so the route walk in
// TestRoutesRefuseWhatTheTableRefuses reaches real handlers (a tenant
// check needs the handler to look the id up). Each feature adds its own
// lines here.
func wireAllFeatures(t *testing.T, d *Deps) {
	t.Helper()
	sim := tradetest.NewEnv(t, ibkrsim.Config{}, tradetest.SimBrokerOptions{Suppress: trading.DefaultAllowedQuestions()})
	ts, err := trading.New(trading.Config{Pool: d.Pool, Broker: sim.Broker, Log: d.Log})
	if err != nil {
		t.Fatal(err)
	}
	d.Trading = ts
}
