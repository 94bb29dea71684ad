package market

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/clocktest"
)

var ny = mustLoad()

func mustLoad() *time.Location {
	loc, err := time.LoadLocation(TimeZone)
	if err != nil {
		panic(err)
	}
	return loc
}

// et returns the time at the exchange for "2006-01-02 15:04:05".
func et(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation(time.DateTime, s, ny)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func newClock(t *testing.T, now time.Time) (*Clock, *clocktest.Clock) {
	t.Helper()
	fake := clocktest.New(now)
	c, err := New(Config{Now: fake.Now})
	if err != nil {
		t.Fatal(err)
	}
	return c, fake
}

// TestCalendarTableCoversNext90Days fails 90 days before the embedded
// calendar runs out, while there is still time to add the next year from
// the exchanges' published calendars.
func TestCalendarTableCoversNext90Days(t *testing.T) {
	c, _ := newClock(t, time.Now())
	if d := c.DayOf(time.Now().AddDate(0, 0, 90)); !d.Known {
		t.Fatalf("the exchange calendar ends %s, less than 90 days from now: add the next year to table.go", tableEnd)
	}
}

func TestCalendar2026(t *testing.T) {
	c, _ := newClock(t, time.Now())
	wantHolidays := []string{"2026-01-01", "2026-01-19", "2026-02-16", "2026-04-03", "2026-05-25",
		"2026-06-19", "2026-07-03", "2026-09-07", "2026-11-26", "2026-12-25"}
	wantEarly := []string{"2026-11-27", "2026-12-24"}
	var gotHolidays, gotEarly []string
	trading := 0
	for d := et(t, "2026-01-01 12:00:00"); d.Year() == 2026; d = d.AddDate(0, 0, 1) {
		day := c.DayOf(d)
		if !day.Known {
			t.Fatalf("%s not in the table", d.Format(time.DateOnly))
		}
		if day.Holiday != "" {
			gotHolidays = append(gotHolidays, day.Date.Format(time.DateOnly))
			if day.TradingDay {
				t.Errorf("%s is a holiday and a trading day", d.Format(time.DateOnly))
			}
		}
		if day.EarlyClose {
			gotEarly = append(gotEarly, day.Date.Format(time.DateOnly))
			if got := day.Close.Format("15:04"); got != "13:00" {
				t.Errorf("early close %s closes at %s", d.Format(time.DateOnly), got)
			}
		}
		if day.TradingDay {
			trading++
			if got := day.Open.Format("15:04 MST"); got != "09:30 EST" && got != "09:30 EDT" {
				t.Errorf("%s opens at %s", d.Format(time.DateOnly), got)
			}
		}
		if wd := d.Weekday(); (wd == time.Saturday || wd == time.Sunday) && day.TradingDay {
			t.Errorf("%s is a weekend trading day", d.Format(time.DateOnly))
		}
	}
	if diff := cmp.Diff(wantHolidays, gotHolidays); diff != "" {
		t.Errorf("2026 holidays (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantEarly, gotEarly); diff != "" {
		t.Errorf("2026 early closes (-want +got):\n%s", diff)
	}
	// 365 days, 104 weekend days, 10 holidays.
	if trading != 251 {
		t.Errorf("2026 has %d trading days, want 251", trading)
	}
}

// The regular session opens at 09:30 New York time on both sides of each
// daylight-saving change; in UTC the open moves by an hour.
func TestDaylightSavingTransitions(t *testing.T) {
	c, _ := newClock(t, time.Now())
	tests := []struct {
		date, openUTC, opgUTC string
	}{
		{"2026-03-06", "14:30", "14:28"}, // Friday before the change: EST
		{"2026-03-09", "13:30", "13:28"}, // Monday after 2026-03-08: EDT
		{"2026-10-30", "13:30", "13:28"}, // Friday before 2026-11-01: EDT
		{"2026-11-02", "14:30", "14:28"}, // Monday after: EST
	}
	for _, tt := range tests {
		day := c.DayOf(et(t, tt.date+" 12:00:00"))
		if got := day.Open.UTC().Format("15:04"); got != tt.openUTC {
			t.Errorf("%s opens at %s UTC, want %s", tt.date, got, tt.openUTC)
		}
		cut, _ := c.CutoffOn(Open, day.Date)
		if got := cut.UTC().Format("15:04"); got != tt.opgUTC {
			t.Errorf("%s OPG cut-off at %s UTC, want %s", tt.date, got, tt.opgUTC)
		}
	}
	// The Sunday of the change itself is closed, and the next open is
	// Monday's.
	sunday := et(t, "2026-03-08 12:00:00")
	if got := c.NextOpen(sunday).In(ny).Format(time.DateTime); got != "2026-03-09 09:30:00" {
		t.Errorf("next open after the change = %s", got)
	}
}

// An order sent one second before a cut-off is for that auction; one second
// after it, for the next trading day's.
func TestCutoffs(t *testing.T) {
	c, _ := newClock(t, time.Now())
	tests := []struct {
		name    string
		auction Auction
		at      string
		want    string
	}{
		{"opg before", Open, "2026-12-02 09:27:59", "2026-12-02 09:28:00"},
		{"opg at", Open, "2026-12-02 09:28:00", "2026-12-03 09:28:00"},
		{"opg after", Open, "2026-12-02 09:28:01", "2026-12-03 09:28:00"},
		{"opg friday evening → monday", Open, "2026-12-04 18:00:00", "2026-12-07 09:28:00"},
		{"opg before a holiday → after it", Open, "2026-12-24 18:00:00", "2026-12-28 09:28:00"},
		{"moc before", Close, "2026-12-02 15:49:59", "2026-12-02 15:50:00"},
		{"moc after", Close, "2026-12-02 15:50:01", "2026-12-03 15:50:00"},
		{"moc early close before", Close, "2026-11-27 12:49:59", "2026-11-27 12:50:00"},
		{"moc early close after", Close, "2026-11-27 12:50:01", "2026-11-30 15:50:00"},
		{"moc on a holiday", Close, "2026-11-26 10:00:00", "2026-11-27 12:50:00"},
		{"moc on a saturday", Close, "2026-12-05 10:00:00", "2026-12-07 15:50:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.Cutoff(tt.auction, et(t, tt.at)).In(ny).Format(time.DateTime)
			if got != tt.want {
				t.Errorf("Cutoff(%s, %s) = %s, want %s", tt.auction, tt.at, got, tt.want)
			}
		})
	}
}

func TestConfiguredCutoffs(t *testing.T) {
	c, err := New(Config{OPGCutoff: 9*time.Hour + 15*time.Minute, MOCCutoff: 15*time.Hour + 45*time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Cutoff(Open, et(t, "2026-12-02 09:20:00")).In(ny).Format(time.DateTime); got != "2026-12-03 09:15:00" {
		t.Errorf("OPG cut-off 09:15: got %s", got)
	}
	if got := c.Cutoff(Close, et(t, "2026-11-27 09:00:00")).In(ny).Format("15:04"); got != "12:45" {
		t.Errorf("MOC cut-off 15:45 on an early close: got %s, want 12:45", got)
	}
	for _, bad := range []Config{{OPGCutoff: 9*time.Hour + 31*time.Minute}, {MOCCutoff: 16 * time.Hour}, {MOCCutoff: 9 * time.Hour}} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) accepted a cut-off outside its session", bad)
		}
	}
}

func TestSessions(t *testing.T) {
	c, _ := newClock(t, time.Now())
	tests := []struct{ at, want string }{
		{"2026-12-02 03:59:59", SessionClosed},
		{"2026-12-02 04:00:00", SessionPre},
		{"2026-12-02 09:29:59", SessionPre},
		{"2026-12-02 09:30:00", SessionRegular},
		{"2026-12-02 15:59:59", SessionRegular},
		{"2026-12-02 16:00:00", SessionPost},
		{"2026-12-02 20:00:00", SessionClosed},
		{"2026-11-27 13:00:00", SessionPost},
		{"2026-11-27 17:00:00", SessionClosed},
		{"2026-11-26 11:00:00", SessionClosed}, // Thanksgiving
		{"2026-12-05 11:00:00", SessionClosed}, // Saturday
	}
	for _, tt := range tests {
		if got := c.Session(et(t, tt.at)); got != tt.want {
			t.Errorf("Session(%s) = %s, want %s", tt.at, got, tt.want)
		}
	}
}

func TestMaintenanceWindows(t *testing.T) {
	c, _ := newClock(t, time.Now())
	tests := []struct {
		at         string
		in         bool
		start, end string
	}{
		{"2026-12-02 00:14:59", false, "2026-12-02 00:15:00", "2026-12-02 01:45:00"},
		{"2026-12-02 00:15:00", true, "2026-12-02 00:15:00", "2026-12-02 01:45:00"},
		{"2026-12-02 01:45:00", false, "2026-12-03 00:15:00", "2026-12-03 01:45:00"},
		{"2026-12-02 12:00:00", false, "2026-12-03 00:15:00", "2026-12-03 01:45:00"},
		// The daily reset on Saturday lies inside the weekend window: one.
		{"2026-12-04 22:00:00", false, "2026-12-04 23:00:00", "2026-12-05 03:00:00"},
		{"2026-12-05 00:30:00", true, "2026-12-04 23:00:00", "2026-12-05 03:00:00"},
		{"2026-12-05 03:00:00", false, "2026-12-06 00:15:00", "2026-12-06 01:45:00"},
	}
	for _, tt := range tests {
		start, end, in := c.Maintenance(et(t, tt.at))
		got := [3]string{start.In(ny).Format(time.DateTime), end.In(ny).Format(time.DateTime), ""}
		if in != tt.in || got[0] != tt.start || got[1] != tt.end {
			t.Errorf("Maintenance(%s) = %s–%s in=%v, want %s–%s in=%v", tt.at, got[0], got[1], in, tt.start, tt.end, tt.in)
		}
	}
}

func TestParseWindows(t *testing.T) {
	ws, err := ParseWindows("daily 00:15-01:45, Fri 23:00-Sat 03:00")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(DefaultMaintenance(), ws); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := FormatWindows(ws); got != "daily 00:15-01:45, Fri 23:00-Sat 03:00" {
		t.Errorf("FormatWindows = %q", got)
	}
	more := []struct {
		in   string
		want Window
	}{
		{"daily 23:30-00:30", Window{Daily: true, Start: 23*time.Hour + 30*time.Minute, Length: time.Hour}},
		{"Sun 01:00-05:00", Window{Weekday: time.Sunday, Start: time.Hour, Length: 4 * time.Hour}},
		{"sat 22:00-mon 02:00", Window{Weekday: time.Saturday, Start: 22 * time.Hour, Length: 28 * time.Hour}},
	}
	for _, tt := range more {
		got, err := ParseWindows(tt.in)
		if err != nil || len(got) != 1 || got[0] != tt.want {
			t.Errorf("ParseWindows(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	none, err := ParseWindows(" None ")
	if err != nil || none == nil || len(none) != 0 || FormatWindows(none) != "none" {
		t.Errorf(`ParseWindows("none") = %#v, %v`, none, err)
	}
	c, err := New(Config{Maintenance: none})
	if err != nil {
		t.Fatal(err)
	}
	if start, _, in := c.Maintenance(time.Now()); in || !start.IsZero() {
		t.Errorf("no windows: start %v in %v", start, in)
	}
	if v := c.View(); v.BrokerMaintenance.NextStart != nil || v.BrokerMaintenance.Now {
		t.Errorf("no windows: view %+v", v.BrokerMaintenance)
	}
	for _, bad := range []string{"", "daily", "daily 25:00-01:00", "Fri 23:00", "Xyz 01:00-02:00",
		"daily 01:00-Sat 02:00", "daily 01:00-01:00", "Mon 1:00-2:00", "Fri 23:00-Fri 23:00x"} {
		if _, err := ParseWindows(bad); err == nil {
			t.Errorf("ParseWindows(%q) accepted", bad)
		}
	}
}

func FuzzParseWindows(f *testing.F) {
	for _, s := range []string{"daily 00:15-01:45, Fri 23:00-Sat 03:00", "Sun 01:00-05:00", "sat 22:00-mon 02:00", "daily 23:59-00:00", "-", ",,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ws, err := ParseWindows(s)
		if err != nil {
			return
		}
		for _, w := range ws {
			if w.Length <= 0 || w.Length >= 7*24*time.Hour || w.Start < 0 || w.Start >= 24*time.Hour {
				t.Fatalf("ParseWindows(%q) gave an impossible window %+v", s, w)
			}
		}
		// What it reads, it writes back the same way.
		again, err := ParseWindows(FormatWindows(ws))
		if err != nil || !cmp.Equal(ws, again) {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", s, again, err, ws)
		}
		c, err := New(Config{Maintenance: ws})
		if err != nil {
			t.Fatal(err)
		}
		start, end, _ := c.Maintenance(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
		if !end.After(start) {
			t.Fatalf("window %s–%s for %q", start, end, s)
		}
	})
}

func TestView(t *testing.T) {
	tests := []struct {
		name, at      string
		session       string
		trading       bool
		early         bool
		holiday       string
		nextOpen      string
		opg, moc      string
		inMaintenance bool
	}{
		{"trading day", "2026-12-02 10:00:00", SessionRegular, true, false, "",
			"2026-12-03 09:30:00", "2026-12-03 09:28:00", "2026-12-02 15:50:00", false},
		{"holiday", "2026-12-25 10:00:00", SessionClosed, false, false, "Christmas Day",
			"2026-12-28 09:30:00", "2026-12-28 09:28:00", "2026-12-28 15:50:00", false},
		{"early close", "2026-11-27 08:00:00", SessionPre, true, true, "",
			"2026-11-27 09:30:00", "2026-11-27 09:28:00", "2026-11-27 12:50:00", false},
		{"weekend in maintenance", "2026-12-05 01:00:00", SessionClosed, false, false, "",
			"2026-12-07 09:30:00", "2026-12-07 09:28:00", "2026-12-07 15:50:00", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newClock(t, et(t, tt.at))
			v := c.View()
			if v.Session != tt.session || v.Today.IsTradingDay != tt.trading || v.Today.EarlyClose != tt.early {
				t.Errorf("session %s trading %v early %v", v.Session, v.Today.IsTradingDay, v.Today.EarlyClose)
			}
			if (v.Today.Holiday == nil) != (tt.holiday == "") || (v.Today.Holiday != nil && *v.Today.Holiday != tt.holiday) {
				t.Errorf("holiday %v, want %q", v.Today.Holiday, tt.holiday)
			}
			if (v.Today.Open == nil) == tt.trading {
				t.Errorf("open %v on trading day %v", v.Today.Open, tt.trading)
			}
			got := []string{v.NextOpen.In(ny).Format(time.DateTime), v.Cutoffs.OPG.In(ny).Format(time.DateTime), v.Cutoffs.MOC.In(ny).Format(time.DateTime)}
			if diff := cmp.Diff([]string{tt.nextOpen, tt.opg, tt.moc}, got); diff != "" {
				t.Errorf("next open, OPG, MOC (-want +got):\n%s", diff)
			}
			if v.BrokerMaintenance.Now != tt.inMaintenance {
				t.Errorf("maintenance now = %v", v.BrokerMaintenance.Now)
			}
			if v.ExchangeTimeZone != TimeZone || v.Now.Location() != time.UTC || !strings.HasPrefix(v.Today.Date, tt.at[:10]) {
				t.Errorf("zone %s now %v date %s", v.ExchangeTimeZone, v.Now, v.Today.Date)
			}
		})
	}
}
