// Package risk answers "may this order go?": four per-user entry limits,
// each capped by a platform ceiling, and three switches — the user's own
// pause, an admin's suspension of one user, and a platform halt per mode.
//
// Trading asks twice. The preview shows every limit line; the confirm
// checks the switches and the limits from the state it reads in its one
// input batch (Snapshot's query is folded into it, so a halt costs no
// extra round trip and every replica sees it at its next confirm), and
// then the day's caps again under the account's order lock, in the very
// statement that inserts the write-ahead row (DayCapSQL): it counts the
// day's orders itself and inserts nothing when the order would break a
// cap. Because every entry's pending row is inserted under that lock, the
// second check sees every order that passed before it — pending, submitted
// and unknown ones included — and two concurrent confirms cannot both
// squeeze under a daily cap. A confirm refused by either check writes no
// confirmation and sends nothing; the refusal is audited (risk.refused).
// We chose "check and insert as one, under the lock" over "insert, then
// check and mark the row failed": the latter would count its own and its
// rivals' pending rows against the cap and leave a failed row for an order
// that never existed.
//
// Exits only ever close what the user holds, so no entry limit, pause or
// suspension refuses them; a platform halt of the mode does.
//
// Limits travel as decimal strings (null: none of the user's own). The
// day of max_orders_per_day and max_daily_value is the exchange's
// (America/New_York), per mode, and counts the day's entry orders that
// were not refused by IBKR: pending, submitted, unknown, filled, partially
// filled, and cancelled ones that filled some shares.
package risk

import (
	"fmt"
	"time"
	_ "time/tzdata" // the exchange's zone on machines without a zoneinfo database

	"github.com/jackc/pgx/v5/pgxpool"
)

// The limits' names, as in the API.
const (
	MaxOrderValue     = "max_order_value"
	MaxSharesPerOrder = "max_shares_per_order"
	MaxOrdersPerDay   = "max_orders_per_day"
	MaxDailyValue     = "max_daily_value"
)

// Names lists the limits in the order the preview shows them.
var Names = []string{MaxOrderValue, MaxSharesPerOrder, MaxOrdersPerDay, MaxDailyValue}

// ExchangeZone is the time zone whose calendar day the daily limits count.
const ExchangeZone = "America/New_York"

// Limits holds the four limits as decimal strings; nil means none.
type Limits struct {
	MaxOrderValue     *string `json:"max_order_value"`
	MaxSharesPerOrder *string `json:"max_shares_per_order"`
	MaxOrdersPerDay   *string `json:"max_orders_per_day"`
	MaxDailyValue     *string `json:"max_daily_value"`
}

// field returns a pointer to the named limit's field.
func (l *Limits) field(name string) **string {
	f := limitField(name, &l.MaxOrderValue, &l.MaxSharesPerOrder, &l.MaxOrdersPerDay, &l.MaxDailyValue)
	if f == nil {
		panic("risk: unknown limit " + name)
	}
	return f
}

// limitField returns the field of the named limit among the four, or nil
// for an unknown name. The match is by name, never by position: a limit's
// value must not follow a reordered list into another limit's field.
func limitField[T any](name string, orderValue, sharesPerOrder, ordersPerDay, dailyValue *T) *T {
	switch name {
	case MaxOrderValue:
		return orderValue
	case MaxSharesPerOrder:
		return sharesPerOrder
	case MaxOrdersPerDay:
		return ordersPerDay
	case MaxDailyValue:
		return dailyValue
	}
	return nil
}

// equal reports whether l and m hold the same limits.
func (l Limits) equal(m Limits) bool {
	for _, n := range Names {
		a, b := l.Get(n), m.Get(n)
		if (a == nil) != (b == nil) || (a != nil && *a != *b) {
			return false
		}
	}
	return true
}

// Get returns the named limit, nil when there is none.
func (l Limits) Get(name string) *string { return *l.field(name) }

// DefaultCeilings are the platform ceilings when neither the environment
// nor Admin → Risk sets them.
func DefaultCeilings() Limits {
	s := func(v string) *string { return &v }
	return Limits{MaxOrderValue: s("100000.00"), MaxSharesPerOrder: s("10000"), MaxOrdersPerDay: s("50"), MaxDailyValue: s("500000.00")}
}

// Config configures a Service.
type Config struct {
	Pool *pgxpool.Pool
	// Ceilings are the environment's platform ceilings
	// (ORDERTUNE_MAX_ORDER_VALUE, ...); a nil field takes its default.
	// Admin → Risk overrides them.
	Ceilings Limits
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service keeps the limits and switches in PostgreSQL. It is safe for
// concurrent use.
type Service struct {
	pool     *pgxpool.Pool
	ceilings Limits
	now      func() time.Time
	zone     *time.Location
}

// New returns a Service, refusing malformed ceilings.
func New(cfg Config) (*Service, error) {
	if cfg.Pool == nil {
		return nil, fmt.Errorf("risk: a pool is required")
	}
	zone, err := time.LoadLocation(ExchangeZone)
	if err != nil {
		return nil, fmt.Errorf("risk: %w", err)
	}
	def := DefaultCeilings()
	for _, n := range Names {
		v := cfg.Ceilings.Get(n)
		if v == nil || *v == "" {
			*cfg.Ceilings.field(n) = def.Get(n)
			continue
		}
		norm, err := parseLimit(n, *v)
		if err != nil {
			return nil, fmt.Errorf("risk: ceiling %s=%q: %s", n, *v, err)
		}
		*cfg.Ceilings.field(n) = &norm
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{pool: cfg.Pool, ceilings: cfg.Ceilings, now: cfg.Now, zone: zone}, nil
}

// day returns the bounds of the exchange's calendar day holding t.
func (s *Service) day(t time.Time) (start, end time.Time) {
	l := t.In(s.zone)
	start = time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, s.zone)
	return start.UTC(), start.AddDate(0, 0, 1).UTC()
}
