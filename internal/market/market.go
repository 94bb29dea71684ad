// Package market knows the exchange's clock: NASDAQ's trading days, holidays
// and early closes in America/New_York, the opening and closing auctions'
// order cut-offs, and IBKR's maintenance windows, when its systems restart
// and no order can be placed.
//
// Everything is computed from an injected clock, so tests set the time
// instead of waiting for it. Go's time zone database is embedded
// (time/tzdata): the exchange's time zone works on a machine without
// zoneinfo.
package market

import (
	"fmt"
	"time"
	_ "time/tzdata" // America/New_York on machines without zoneinfo
)

// TimeZone is the exchange's time zone; every time of day here is in it.
const TimeZone = "America/New_York"

// Regular session times of a full trading day, and the end of an early
// close, as offsets from midnight in the exchange's time zone.
const (
	preOpen    = 4 * time.Hour
	regularOpn = 9*time.Hour + 30*time.Minute
	fullClose  = 16 * time.Hour
	earlyClose = 13 * time.Hour
	postClose  = 20 * time.Hour
)

// Sessions of the trading day, as GET /market/clock names them.
const (
	SessionClosed  = "closed"
	SessionPre     = "pre"
	SessionRegular = "regular"
	SessionPost    = "post"
)

// Auction names an auction an order is for.
type Auction string

// The two auctions Ordertune's orders go to: OPG orders (market or limit on
// open) and MOC orders (market on close).
const (
	Open  Auction = "opg"
	Close Auction = "moc"
)

// Config configures a Clock. Zero fields take IBKR's and the exchange's
// defaults.
type Config struct {
	// OPGCutoff is when opening-auction orders must have reached IBKR, as
	// time since midnight ET; default 09:28.
	OPGCutoff time.Duration
	// MOCCutoff is when closing-auction orders must have reached IBKR on
	// a full trading day, as time since midnight ET; default 15:50. On an
	// early close it moves as far before the close as it is before 16:00.
	MOCCutoff time.Duration
	// Maintenance are IBKR's restart windows; nil means
	// DefaultMaintenance, an empty slice none (the simulator restarts only
	// when told).
	Maintenance []Window
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Clock answers questions about the exchange's calendar at the time its
// clock reads. It is safe for concurrent use.
type Clock struct {
	cfg Config
	loc *time.Location
}

// New returns a Clock for cfg.
func New(cfg Config) (*Clock, error) {
	loc, err := time.LoadLocation(TimeZone)
	if err != nil {
		return nil, fmt.Errorf("market: load %s: %w", TimeZone, err)
	}
	if cfg.OPGCutoff == 0 {
		cfg.OPGCutoff = 9*time.Hour + 28*time.Minute
	}
	if cfg.MOCCutoff == 0 {
		cfg.MOCCutoff = 15*time.Hour + 50*time.Minute
	}
	if cfg.OPGCutoff < 0 || cfg.OPGCutoff >= regularOpn {
		return nil, fmt.Errorf("market: the opening cut-off %s must be before the 09:30 open", clockString(cfg.OPGCutoff))
	}
	if cfg.MOCCutoff <= regularOpn || cfg.MOCCutoff >= fullClose {
		return nil, fmt.Errorf("market: the closing cut-off %s must be within the regular session", clockString(cfg.MOCCutoff))
	}
	if cfg.Maintenance == nil {
		cfg.Maintenance = DefaultMaintenance()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Clock{cfg: cfg, loc: loc}, nil
}

// Default returns a Clock with the default cut-offs and restart windows
// on the system clock.
func Default() *Clock {
	c, err := New(Config{})
	if err != nil {
		panic(err) // the time zone database is embedded; the defaults are valid
	}
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return c.cfg.Now() }

// Location returns the exchange's time zone.
func (c *Clock) Location() *time.Location { return c.loc }

// Day is one calendar day at the exchange.
type Day struct {
	// Date is midnight of the day in the exchange's time zone.
	Date time.Time
	// TradingDay reports whether the exchange trades that day.
	TradingDay bool
	// Holiday names the holiday when the exchange is closed on a weekday.
	Holiday string
	// EarlyClose reports whether the regular session ends at 13:00.
	EarlyClose bool
	// Open and Close bound the regular session; zero when not a trading day.
	Open, Close time.Time
	// Known reports whether the day is inside the calendar's table; after
	// it, weekdays are taken as full trading days.
	Known bool
}

// DayOf returns the exchange day that t falls on.
func (c *Clock) DayOf(t time.Time) Day {
	t = t.In(c.loc)
	date := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, c.loc)
	key := date.Format(time.DateOnly)
	d := Day{Date: date, Known: key >= tableStart && key <= tableEnd}
	if wd := date.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return d
	}
	if name, ok := holidays[key]; ok {
		d.Holiday = name
		return d
	}
	d.TradingDay = true
	_, d.EarlyClose = earlyCloses[key]
	d.Open = at(date, regularOpn)
	d.Close = at(date, fullClose)
	if d.EarlyClose {
		d.Close = at(date, earlyClose)
	}
	return d
}

// at returns the wall-clock time offset into the day that starts at
// midnight; it is built from the wall clock, not by adding a duration, so
// that a day with a daylight-saving change still opens at 09:30.
func at(midnight time.Time, offset time.Duration) time.Time {
	h, m := int(offset/time.Hour), int(offset%time.Hour/time.Minute)
	return time.Date(midnight.Year(), midnight.Month(), midnight.Day(), h, m, 0, 0, midnight.Location())
}

// nextTradingDay returns the first trading day at or after the day of t.
func (c *Clock) nextTradingDay(t time.Time) Day {
	d := c.DayOf(t)
	for i := 0; !d.TradingDay && i < 15; i++ {
		next := d.Date.AddDate(0, 0, 1)
		d = c.DayOf(next)
	}
	return d
}

// Session returns the part of the trading day that t is in.
func (c *Clock) Session(t time.Time) string {
	d := c.DayOf(t)
	if !d.TradingDay {
		return SessionClosed
	}
	post := at(d.Date, postClose)
	if d.EarlyClose {
		post = at(d.Date, 17*time.Hour)
	}
	switch {
	case t.Before(at(d.Date, preOpen)):
		return SessionClosed
	case t.Before(d.Open):
		return SessionPre
	case t.Before(d.Close):
		return SessionRegular
	case t.Before(post):
		return SessionPost
	}
	return SessionClosed
}

// NextOpen returns the first regular-session open after t.
func (c *Clock) NextOpen(t time.Time) time.Time {
	d := c.nextTradingDay(t)
	if !t.Before(d.Open) {
		d = c.nextTradingDay(d.Date.AddDate(0, 0, 1))
	}
	return d.Open
}

// cutoffOn returns the cut-off for auction a on trading day d.
func (c *Clock) cutoffOn(d Day, a Auction) time.Time {
	if a == Open {
		return at(d.Date, c.cfg.OPGCutoff)
	}
	return d.Close.Add(c.cfg.MOCCutoff - fullClose)
}

// Cutoff returns when an order for auction a sent at t must reach IBKR:
// the cut-off of the next auction a that has not passed at t. On a
// non-trading day, or after the day's cut-off, that is the next trading
// day's.
func (c *Clock) Cutoff(a Auction, t time.Time) time.Time {
	d := c.nextTradingDay(t)
	cut := c.cutoffOn(d, a)
	if !t.Before(cut) {
		d = c.nextTradingDay(d.Date.AddDate(0, 0, 1))
		cut = c.cutoffOn(d, a)
	}
	return cut
}

// CutoffOn returns the cut-off of auction a on the first trading day at or
// after the given date (a signal's entry date, say), and that day.
func (c *Clock) CutoffOn(a Auction, date time.Time) (time.Time, Day) {
	d := c.nextTradingDay(time.Date(date.Year(), date.Month(), date.Day(), 12, 0, 0, 0, c.loc))
	return c.cutoffOn(d, a), d
}

// clockString formats a time of day given as time since midnight.
func clockString(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
}
