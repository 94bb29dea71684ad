package trading_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/risk"
	"github.com/ordertune/ordertune/internal/trading"
)

// risks returns a risk service over w's database.
func (w *world) risks(t testing.TB) *risk.Service {
	t.Helper()
	r, err := risk.New(risk.Config{Pool: w.pool})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func setLimit(t testing.TB, r *risk.Service, u, name, v string) {
	t.Helper()
	var in risk.UserUpdate
	in.Set(name, &v)
	if _, err := r.SetSettings(context.Background(), u, in, ""); err != nil {
		t.Fatal(err)
	}
}

func (w *world) count(t testing.TB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := w.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestConcurrentConfirmsUnderDailyCap: 20 confirms of different signals at
// once against max_orders_per_day = 3 place exactly 3 orders; the other 17
// are refused with risk_limit_exceeded, write no confirmation and are
// audited.
func TestConcurrentConfirmsUnderDailyCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, u := newTrader(t, "2")
	setLimit(t, w.risks(t), u, risk.MaxOrdersPerDay, "3")
	const n = 20
	ids := make([]string, n)
	for i := range ids {
		ids[i] = w.signal(t, nil).ID
	}
	errsOut := make([]error, n)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { _, _, errsOut[i] = w.svc.Confirm(ctx, u, id, fmt.Sprint("k", i), "BUY") })
	}
	wg.Wait()
	ok, refused := 0, 0
	for i, err := range errsOut {
		var le *risk.LimitError
		switch {
		case err == nil:
			ok++
		case errs.Is(err, errs.RiskLimitExceeded) && errors.As(err, &le) && le.Line.Name == risk.MaxOrdersPerDay &&
			le.Line.Limit == "3" && le.Line.WouldBe == "4":
			refused++
		default:
			t.Errorf("confirm %d: %v", i, err)
		}
	}
	if ok != 3 || refused != 17 {
		t.Errorf("%d placed, %d refused; want 3 and 17", ok, refused)
	}
	if got := len(w.env.Orders(t)); got != 3 {
		t.Errorf("%d orders at the simulator, want 3", got)
	}
	if got := w.count(t, `SELECT count(*) FROM confirmations WHERE user_id = $1`, u); got != 3 {
		t.Errorf("%d confirmations written, want 3", got)
	}
	if got := w.count(t, `SELECT count(*) FROM audit_events WHERE user_id = $1 AND action = 'risk.refused'`, u); got != 17 {
		t.Errorf("%d refusals audited, want 17", got)
	}
}

// TestPreviewAndConfirmLimits: the preview shows each limit line; a confirm
// over one is refused before anything is written or sent.
func TestPreviewAndConfirmLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, u := newTrader(t, "10") // 10 × 187.25 = 1872.50
	r := w.risks(t)
	g := w.signal(t, nil)
	setLimit(t, r, u, risk.MaxOrderValue, "1872.49")
	p, err := w.svc.Preview(ctx, u, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []risk.Line{
		{Name: risk.MaxOrderValue, Limit: "1872.49", WouldBe: "1872.50", OK: false},
		{Name: risk.MaxSharesPerOrder, Limit: "10000", WouldBe: "10", OK: true},
		{Name: risk.MaxOrdersPerDay, Limit: "50", WouldBe: "1", OK: true},
		{Name: risk.MaxDailyValue, Limit: "500000.00", WouldBe: "1872.50", OK: true},
	}
	if fmt.Sprint(p.Limits) != fmt.Sprint(want) {
		t.Fatalf("preview limits\n got %+v\nwant %+v", p.Limits, want)
	}
	if _, _, err := w.svc.Confirm(ctx, u, g.ID, "over", "BUY"); !errs.Is(err, errs.RiskLimitExceeded) {
		t.Fatalf("confirm over max_order_value: %v", err)
	}
	if n := len(w.env.Orders(t)); n != 0 {
		t.Fatalf("%d orders sent", n)
	}
	setLimit(t, r, u, risk.MaxOrderValue, "1872.50")
	if c, _, err := w.svc.Confirm(ctx, u, g.ID, "at", "BUY"); err != nil || c.Status != trading.StatusSubmitted {
		t.Fatalf("confirm at max_order_value: %s, %v", c.Status, err)
	}
}

// TestExitsGoThroughPauseAndLimits: a paused, suspended user over every
// entry limit still sells what they hold; entries are refused; a halt of
// the mode refuses the exit too, with its reason.
func TestExitsGoThroughPauseAndLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, u := newTrader(t, "5")
	w.filledEntry(t, u)
	r := w.risks(t)
	for _, n := range risk.Names {
		setLimit(t, r, u, n, "0")
	}
	paused := true
	if _, err := r.SetSettings(ctx, u, risk.UserUpdate{TradingPaused: &paused}, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.svc.Confirm(ctx, u, w.signal(t, nil).ID, "entry", "BUY"); !errs.Is(err, errs.TradingPaused) {
		t.Fatalf("entry while paused: %v, want trading_paused", err)
	}
	exit := func() string {
		return w.signal(t, func(n *trading.NewSignal) { n.Kind = "exit"; n.EntryMode = trading.SignalClose }).ID
	}
	if err := r.SetSuspended(ctx, w.admin, u, true, "review", ""); err != nil {
		t.Fatal(err)
	}
	halted := exit()
	if p, err := w.svc.Preview(ctx, u, halted); err != nil || len(p.Limits) != 0 {
		t.Fatalf("exit preview: %+v, %v; want no limit lines", p.Limits, err)
	}
	// A halt of the mode refuses the exit too.
	on, reason := true, "broker incident"
	if _, err := r.SetPlatform(ctx, w.admin, risk.PlatformUpdate{Halted: risk.HaltsUpdate{Paper: &on}, HaltReason: &reason}, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.svc.Confirm(ctx, u, halted, "sell-halted", "SELL"); !errs.Is(err, errs.TradingHalted) || errs.As(err).Message == "" ||
		!strings.Contains(errs.As(err).Message, reason) {
		t.Fatalf("exit while halted: %v, want trading_halted with the reason", err)
	}
	off := false
	if _, err := r.SetPlatform(ctx, w.admin, risk.PlatformUpdate{Halted: risk.HaltsUpdate{Paper: &off}}, ""); err != nil {
		t.Fatal(err)
	}
	c, _, err := w.svc.Confirm(ctx, u, exit(), "sell", "SELL")
	if err != nil || c.Status != trading.StatusSubmitted || c.Quantity != 5 {
		t.Fatalf("exit while paused, suspended and over limits: %s of %d, %v; want 5 submitted", c.Status, c.Quantity, err)
	}
	w.wantOneSell(t)
}

// TestHaltSeenByAnotherService: a halt set through one service refuses a
// confirm on a second one (its own pool, as another replica) at once.
func TestHaltSeenByAnotherService(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, u := newTrader(t, "1")
	pool2, err := pgxpool.New(ctx, w.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool2.Close)
	r2, err := risk.New(risk.Config{Pool: pool2})
	if err != nil {
		t.Fatal(err)
	}
	svc2, err := trading.New(trading.Config{Pool: pool2, Broker: w.env.Broker, Risk: r2})
	if err != nil {
		t.Fatal(err)
	}
	g := w.signal(t, nil)
	if _, err := svc2.Preview(ctx, u, g.ID); err != nil { // warm: the second replica has served this user
		t.Fatal(err)
	}
	on, reason := true, "market-wide circuit breaker"
	if _, err := w.risks(t).SetPlatform(ctx, w.admin, risk.PlatformUpdate{Halted: risk.HaltsUpdate{Paper: &on}, HaltReason: &reason}, ""); err != nil {
		t.Fatal(err)
	}
	halted := time.Now()
	_, _, err = svc2.Confirm(ctx, u, g.ID, "after-halt", "BUY")
	if !errs.Is(err, errs.TradingHalted) || time.Since(halted) > time.Second {
		t.Fatalf("confirm on the second service %v after the halt: %v; want trading_halted within 1s", time.Since(halted), err)
	}
	if n := len(w.env.Orders(t)); n != 0 {
		t.Fatalf("%d orders sent during a halt", n)
	}
}
