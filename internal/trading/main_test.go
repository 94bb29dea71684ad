package trading_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/market"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// world is one test's real parts: a fresh database, a simulator over HTTP,
// a SimBroker and the service.
type world struct {
	env   *tradetest.Env
	pool  *pgxpool.Pool
	svc   *trading.Service
	admin string
}

// fastSim lists the orders every 50 ms (tradetest.FastPacing), so
// reconciliation tests run in milliseconds.
func fastSim() ibkrsim.Config { return ibkrsim.Config{Pacing: tradetest.FastPacing()} }

func newWorld(t testing.TB, simCfg ibkrsim.Config, tune func(*trading.Config, *tradetest.SimBrokerOptions)) *world {
	t.Helper()
	pool := pgtest.Pool(t)
	tc := trading.Config{Pool: pool, ReconcileInterval: 20 * time.Millisecond, PendingGrace: time.Second}
	bo := tradetest.SimBrokerOptions{Limits: tradetest.FastLimits()}
	if tune != nil {
		tune(&tc, &bo)
	}
	env := tradetest.NewEnv(t, simCfg, bo)
	tc.Broker = env.Broker
	svc, err := trading.New(tc)
	if err != nil {
		t.Fatal(err)
	}
	return &world{env: env, pool: pool, svc: svc, admin: tradetest.NewUser(t, pool, "admin")}
}

// newTrader is most tests' start: a world on the fast simulator and one
// subscriber who buys shares shares of each entry.
func newTrader(t testing.TB, shares string) (*world, string) {
	t.Helper()
	w := newWorld(t, fastSim(), nil)
	return w, w.subscriber(t, trading.SizeShares, shares)
}

// subscriber makes a user connected to a fresh simulated account with a
// position size.
func (w *world) subscriber(t testing.TB, mode, value string) string {
	t.Helper()
	id := tradetest.NewUser(t, w.pool, "subscriber")
	w.env.Connect(t, id, "")
	if mode != "" {
		v := &value
		if mode == trading.SizeOff {
			v = nil
		}
		if _, err := w.svc.SetPositionSize(context.Background(), id, trading.PositionSize{Mode: mode, Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// tradingDayAWeekAhead is the first trading day a week or more from now:
// a signal's confirmations stay open until its cut-off, after any test.
func tradingDayAWeekAhead() string {
	_, day := market.Default().CutoffOn(market.Open, time.Now().AddDate(0, 0, 7))
	return day.Date.Format(time.DateOnly)
}

// signal publishes an AAPL strategy I entry at market on open, changed by
// mod.
func (w *world) signal(t testing.TB, mod func(*trading.NewSignal)) trading.Signal {
	t.Helper()
	n := trading.NewSignal{Ticker: "AAPL", Strategy: "I", Kind: "entry", SignalDate: "2026-11-20", EntryDate: tradingDayAWeekAhead(),
		RefClose: "187.25", RSI2: "4.5", Return2D: "-0.031", EntryMode: trading.NextOpenMarket, ExpiresAt: time.Now().Add(time.Hour)}
	if mod != nil {
		mod(&n)
	}
	g, err := w.svc.CreateSignal(context.Background(), w.admin, n)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// settle runs reconciliation passes until no row is left to settle or
// track, or fails the test after many passes.
func (w *world) settle(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < 400; i++ {
		var open int
		if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM confirmations WHERE status IN ('pending', 'unknown')`).Scan(&open); err != nil {
			t.Fatal(err)
		}
		if open == 0 {
			return
		}
		if _, err := w.svc.Reconcile(ctx); err != nil {
			t.Logf("reconcile: %v", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatal("confirmations still pending or unknown after 400 reconciliation passes")
}

func ptr[T any](v T) *T { return &v }

// trimFloat renders a simulator price the way numeric::text trimmed reads.
func trimFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
