package risk_test

import (
	"context"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/risk"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func sp(v string) *string { return &v }

func bp(v bool) *bool { return &v }

func newService(t testing.TB, ceilings risk.Limits) (*risk.Service, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.Pool(t)
	s, err := risk.New(risk.Config{Pool: pool, Ceilings: ceilings})
	if err != nil {
		t.Fatal(err)
	}
	return s, pool
}

func set(name string, v *string) risk.UserUpdate {
	var u risk.UserUpdate
	u.Set(name, v)
	return u
}

// wantAudits fails the test unless there are want audit rows with any of
// actions.
func wantAudits(t *testing.T, pool *pgxpool.Pool, want int, actions ...string) {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE action = ANY($1)`, actions).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("%d audit rows of %v, want %d", n, actions, want)
	}
}

// TestUserLimitsUnderCeilings: a user's own limit may equal its ceiling,
// never exceed it, and the refusal names the field.
func TestUserLimitsUnderCeilings(t *testing.T) {
	ctx := context.Background()
	s, pool := newService(t, risk.Limits{MaxOrderValue: sp("1000"), MaxSharesPerOrder: sp("50")})
	u := tradetest.NewUser(t, pool, "subscriber")
	st, err := s.Settings(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if st.MaxOrderValue != nil || *st.Ceilings.MaxOrderValue != "1000.00" || *st.Ceilings.MaxOrdersPerDay != "50" {
		t.Fatalf("fresh settings: %+v", st)
	}
	tests := []struct {
		name, value string
		ok          bool
	}{
		{risk.MaxOrderValue, "999.99", true},
		{risk.MaxOrderValue, "1000", true},
		{risk.MaxOrderValue, "1000.01", false},
		{risk.MaxSharesPerOrder, "49", true},
		{risk.MaxSharesPerOrder, "50", true},
		{risk.MaxSharesPerOrder, "51", false},
		{risk.MaxOrdersPerDay, "abc", false},
	}
	for _, tt := range tests {
		_, err := s.SetSettings(ctx, u, set(tt.name, sp(tt.value)), "")
		e := errs.As(err)
		if tt.ok != (err == nil) || (!tt.ok && (e == nil || len(e.Fields) != 1 || e.Fields[0].Field != tt.name)) {
			t.Errorf("%s=%s: %v, want ok %v (a field error at %s otherwise)", tt.name, tt.value, err, tt.ok, tt.name)
		}
	}
	st, err = s.Settings(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if *st.MaxOrderValue != "1000.00" || *st.MaxSharesPerOrder != "50" {
		t.Fatalf("after: %+v", st.Limits)
	}
	wantAudits(t, pool, 4, "risk.settings")
}

// TestRaises: raising or removing a limit and resuming need step-up;
// lowering, a first limit and pausing do not.
func TestRaises(t *testing.T) {
	ctx := context.Background()
	s, pool := newService(t, risk.Limits{})
	u := tradetest.NewUser(t, pool, "subscriber")
	check := func(what string, in risk.UserUpdate, want bool) {
		t.Helper()
		got, err := s.Raises(ctx, u, in)
		if err != nil || got != want {
			t.Fatalf("%s: Raises = %v, %v; want %v", what, got, err, want)
		}
	}
	check("first limit", set(risk.MaxOrderValue, sp("500")), false)
	if _, err := s.SetSettings(ctx, u, set(risk.MaxOrderValue, sp("500")), ""); err != nil {
		t.Fatal(err)
	}
	check("lower", set(risk.MaxOrderValue, sp("499.99")), false)
	check("same", set(risk.MaxOrderValue, sp("500.00")), false)
	check("raise", set(risk.MaxOrderValue, sp("500.01")), true)
	check("remove", set(risk.MaxOrderValue, nil), true)
	check("pause", risk.UserUpdate{TradingPaused: bp(true)}, false)
	if _, err := s.SetSettings(ctx, u, risk.UserUpdate{TradingPaused: bp(true)}, ""); err != nil {
		t.Fatal(err)
	}
	check("resume", risk.UserUpdate{TradingPaused: bp(false)}, true)
}

// TestPlatform: ceilings override the environment's, a null goes back to
// it, a halt needs a reason, and every switch is audited with who.
func TestPlatform(t *testing.T) {
	ctx := context.Background()
	s, pool := newService(t, risk.Limits{MaxOrdersPerDay: sp("20")})
	admin := tradetest.NewUser(t, pool, "admin")
	u := tradetest.NewUser(t, pool, "subscriber")
	var in risk.PlatformUpdate
	in.MaxOrdersPerDay = risk.Optional{Set: true, Value: sp("5")}
	p, err := s.SetPlatform(ctx, admin, in, "")
	if err != nil || *p.MaxOrdersPerDay != "5" || *p.Environment.MaxOrdersPerDay != "20" {
		t.Fatalf("SetPlatform: %+v, %v", p, err)
	}
	if _, err := s.SetSettings(ctx, u, set(risk.MaxOrdersPerDay, sp("6")), ""); !errs.Is(err, errs.Invalid) {
		t.Fatalf("limit above the admin's ceiling: %v", err)
	}
	in = risk.PlatformUpdate{Halted: risk.HaltsUpdate{Live: bp(true)}}
	if _, err := s.SetPlatform(ctx, admin, in, ""); errs.As(err) == nil || errs.As(err).Fields[0].Field != "halt_reason" {
		t.Fatalf("halt without a reason: %v", err)
	}
	in.HaltReason = sp("exchange outage")
	in.MaxOrdersPerDay = risk.Optional{Set: true}
	if p, err = s.SetPlatform(ctx, admin, in, ""); err != nil || !p.Halted.Live || p.Halted.Paper || *p.MaxOrdersPerDay != "20" {
		t.Fatalf("halt live: %+v, %v", p, err)
	}
	sn, err := s.Snapshot(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if !errs.Is(sn.Gate(risk.Live, true), errs.TradingHalted) || sn.Gate(risk.Paper, false) != nil {
		t.Fatalf("gate after halting live: %v / %v", sn.Gate(risk.Live, true), sn.Gate(risk.Paper, false))
	}
	var actor string
	if err := pool.QueryRow(ctx, `SELECT actor_id::text FROM audit_events WHERE action = 'risk.halt' AND subject = 'live' AND details->>'reason' = 'exchange outage'`).Scan(&actor); err != nil || actor != admin {
		t.Fatalf("halt audit: actor %q, %v", actor, err)
	}
	wantAudits(t, pool, 2, "risk.ceilings")
}

func TestSuspension(t *testing.T) {
	ctx := context.Background()
	s, pool := newService(t, risk.Limits{})
	admin := tradetest.NewUser(t, pool, "admin")
	u := tradetest.NewUser(t, pool, "subscriber")
	if err := s.SetSuspended(ctx, admin, u, true, "", ""); !errs.Is(err, errs.Invalid) {
		t.Fatalf("suspension without a reason: %v", err)
	}
	if err := s.SetSuspended(ctx, admin, "00000000-0000-4000-8000-000000000000", true, "x", ""); !errs.Is(err, errs.NotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if err := s.SetSuspended(ctx, admin, u, true, "chargeback", ""); err != nil {
		t.Fatal(err)
	}
	sn, err := s.Snapshot(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if e := errs.As(sn.Gate(risk.Paper, false)); e == nil || e.Code != errs.UserSuspended || !strings.Contains(e.Message, "chargeback") {
		t.Fatalf("gate: %v", e)
	}
	if sn.Gate(risk.Paper, true) != nil {
		t.Fatal("an exit refused by a suspension")
	}
	if err := s.SetSuspended(ctx, admin, u, false, "", ""); err != nil {
		t.Fatal(err)
	}
	wantAudits(t, pool, 2, "user.suspended", "user.unsuspended")
}

// TestDayIsTheExchanges: an entry at 23:30 New York time yesterday is not
// today's, though it is today's in UTC.
func TestDayIsTheExchanges(t *testing.T) {
	ctx := context.Background()
	ny, _ := time.LoadLocation(risk.ExchangeZone)
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, ny)
	pool := pgtest.Pool(t)
	s, err := risk.New(risk.Config{Pool: pool, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	u := tradetest.NewUser(t, pool, "subscriber")
	admin := tradetest.NewUser(t, pool, "admin")
	var sig string
	newSignal := func() error {
		return pool.QueryRow(ctx, `INSERT INTO signals (ticker, strategy, kind, signal_date, entry_date, ref_close, rsi2, return_2d, entry_mode, expires_at, created_by, created_at)
		VALUES ('AAPL', 'I', 'entry', '2026-11-23', '2026-11-24', 100, 1, 1, 'next_open_market', now(), $1, now()) RETURNING id`, admin).Scan(&sig)
	}
	for i, at := range []time.Time{
		time.Date(2026, 11, 23, 23, 30, 0, 0, ny), // yesterday in New York
		time.Date(2026, 11, 24, 0, 0, 0, 0, ny),   // today's first instant
		time.Date(2026, 11, 24, 9, 0, 0, 0, ny),
	} {
		if err := newSignal(); err != nil {
			t.Fatal(err)
		}
		status := "submitted"
		if i == 2 {
			status = "failed" // refused by IBKR: not counted
		}
		if _, err := pool.Exec(ctx, `INSERT INTO confirmations (id, user_id, signal_id, side, idempotency_key, request_hash, ticker, quantity,
			order_type, tif, ref_price, mode, account_id_masked, status, created_at, updated_at)
			VALUES (gen_random_uuid(), $1, $2, 'BUY', $3, '\x00', 'AAPL', 3, 'MKT', 'OPG', 100.5, 'paper', 'D•••1', $4, $5, $5)`,
			u, sig, at.String(), status, at); err != nil {
			t.Fatal(err)
		}
	}
	sn, err := s.Snapshot(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	got := sn.Used[risk.Paper]
	if v, _ := new(big.Rat).SetString(got.Value); got.Orders != 1 || v == nil || v.Cmp(big.NewRat(603, 2)) != 0 {
		t.Fatalf("paper usage %+v, want 1 order worth 301.5", got)
	}
}
