package ledger_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ledger"
	"github.com/ordertune/ordertune/internal/market"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// world is one test's real parts: a fresh database, the simulator over
// HTTP, trading and the ledger on a SimBroker.
type world struct {
	env    *tradetest.Env
	pool   *pgxpool.Pool
	trade  *trading.Service
	ledger *ledger.Service
	admin  string
}

// fastSim is tradetest.FastPacing with the portfolio accounts listed first,
// as IBKR demands.
func fastSim() ibkrsim.Config {
	return ibkrsim.Config{PortfolioAccountsFirst: true, Pacing: tradetest.FastPacing()}
}

func newWorld(t testing.TB, simCfg ibkrsim.Config) *world {
	t.Helper()
	pool := pgtest.Pool(t)
	env := tradetest.NewEnv(t, simCfg, tradetest.SimBrokerOptions{Limits: tradetest.FastLimits()})
	ts, err := trading.New(trading.Config{Pool: pool, Broker: env.Broker, ReconcileInterval: 20 * time.Millisecond, PendingGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := ledger.New(ledger.Config{Pool: pool, Broker: env.Broker, RecordFills: ts.RecordFills, PositionsTTL: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	return &world{env: env, pool: pool, trade: ts, ledger: ls, admin: tradetest.NewUser(t, pool, "admin")}
}

// subscriber is a user on a fresh simulated paper account (or account)
// who trades shares shares per entry.
func (w *world) subscriber(t testing.TB, account, shares string) string {
	t.Helper()
	id := tradetest.NewUser(t, w.pool, "subscriber")
	w.env.Connect(t, id, account)
	if _, err := w.trade.SetPositionSize(context.Background(), id, trading.PositionSize{Mode: trading.SizeShares, Value: &shares}); err != nil {
		t.Fatal(err)
	}
	return id
}

// tradingDayAWeekAhead keeps the signals' cut-offs after any test.
func tradingDayAWeekAhead() string {
	_, day := market.Default().CutoffOn(market.Open, time.Now().AddDate(0, 0, 7))
	return day.Date.Format(time.DateOnly)
}

// signal publishes a strategy's entry (market on open) or exit (market on
// close) for ticker.
func (w *world) signal(t testing.TB, ticker, strategy, kind string) trading.Signal {
	t.Helper()
	n := trading.NewSignal{Ticker: ticker, Strategy: strategy, Kind: kind, SignalDate: "2026-11-20", EntryDate: tradingDayAWeekAhead(),
		RefClose: "187.25", RSI2: "4.5", Return2D: "-0.031", EntryMode: trading.NextOpenMarket, ExpiresAt: time.Now().Add(time.Hour)}
	if kind == "exit" {
		n.EntryMode = trading.SignalClose
	}
	g, err := w.trade.CreateSignal(context.Background(), w.admin, n)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// confirm confirms g for user and returns the confirmation.
func (w *world) confirm(t testing.TB, user string, g trading.Signal) trading.Confirmation {
	t.Helper()
	side := trading.Buy
	if g.Kind == "exit" {
		side = trading.Sell
	}
	c, _, err := w.trade.Confirm(context.Background(), user, g.ID, "key-"+g.ID, side)
	if err != nil {
		t.Fatalf("confirm %s %s: %v", g.Kind, g.Ticker, err)
	}
	if c.Status != trading.StatusSubmitted {
		t.Fatalf("confirm %s %s: status %s", g.Kind, g.Ticker, c.Status)
	}
	return c
}

// auction runs the opening or closing auction at prices, over the
// simulator's control API.
func (w *world) auction(t testing.TB, open bool, prices map[string]float64) {
	t.Helper()
	p := "/sim/auction/close"
	if open {
		p = "/sim/auction/open"
	}
	w.post(t, p, map[string]any{"prices": prices})
}

func (w *world) post(t testing.TB, path string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(w.env.URL+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("POST %s: %d", path, resp.StatusCode)
	}
}

// simExecutions reads GET /sim/executions of account.
func (w *world) simExecutions(t testing.TB, account string) []ibkrsim.SimExecution {
	t.Helper()
	resp, err := http.Get(w.env.URL + "/sim/executions?account=" + account)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []ibkrsim.SimExecution
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func (w *world) importNow(t testing.TB, user string) ledger.ImportResult {
	t.Helper()
	res, err := w.ledger.Import(context.Background(), user)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return res
}

func (w *world) confirmation(t testing.TB, user, id string) trading.Confirmation {
	t.Helper()
	c, err := w.trade.Confirmation(context.Background(), user, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
