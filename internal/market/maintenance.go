package market

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Window is one of IBKR's recurring restart windows, in the exchange's time
// zone. During it IBKR's systems are down: no handshake, no order, no
// keep-alive.
type Window struct {
	// Weekday is the day the window starts on; Daily means every day.
	Weekday time.Weekday
	// Daily reports whether the window recurs every day.
	Daily bool
	// Start is when the window starts, as time since midnight.
	Start time.Duration
	// Length is how long it lasts.
	Length time.Duration
}

// DefaultMaintenance returns IBKR's published North-America restart
// schedule: a daily reset from 00:15 to 01:45 ET, and the weekend one from
// Friday 23:00 to Saturday 03:00 ET.
func DefaultMaintenance() []Window {
	return []Window{
		{Daily: true, Start: 15 * time.Minute, Length: 90 * time.Minute},
		{Weekday: time.Friday, Start: 23 * time.Hour, Length: 4 * time.Hour},
	}
}

// String formats w the way ParseWindows reads it.
func (w Window) String() string {
	end := w.Start + w.Length
	if w.Daily {
		return fmt.Sprintf("daily %s-%s", clockString(w.Start), clockString(end%(24*time.Hour)))
	}
	endDay := (w.Weekday + time.Weekday(end/(24*time.Hour))) % 7
	return fmt.Sprintf("%s %s-%s %s", w.Weekday.String()[:3], clockString(w.Start), endDay.String()[:3], clockString(end%(24*time.Hour)))
}

// FormatWindows formats ws as a comma-separated list that ParseWindows reads.
func FormatWindows(ws []Window) string {
	if ws != nil && len(ws) == 0 {
		return "none"
	}
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.String()
	}
	return strings.Join(parts, ", ")
}

// ParseWindows reads a comma-separated list of restart windows, or "none",
// each window either
// "daily HH:MM-HH:MM" or "Day HH:MM-[Day ]HH:MM" with three-letter English
// day names ("Fri 23:00-Sat 03:00"). A window that ends at or before its
// start time without an end day ends the next day. Windows last less than
// a week.
func ParseWindows(s string) ([]Window, error) {
	if strings.EqualFold(strings.TrimSpace(s), "none") {
		return []Window{}, nil
	}
	var ws []Window
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		w, err := parseWindow(part)
		if err != nil {
			return nil, fmt.Errorf("maintenance window %q: %w", part, err)
		}
		ws = append(ws, w)
	}
	if len(ws) == 0 {
		return nil, fmt.Errorf("no maintenance window in %q", s)
	}
	return ws, nil
}

func parseWindow(s string) (Window, error) {
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		return Window{}, fmt.Errorf(`want "daily HH:MM-HH:MM" or "Fri HH:MM-Sat HH:MM"`)
	}
	startDay, startText, ok := strings.Cut(strings.TrimSpace(from), " ")
	if !ok {
		return Window{}, fmt.Errorf("the start needs a day (daily, Mon … Sun) and a time")
	}
	start, err := parseClock(strings.TrimSpace(startText))
	if err != nil {
		return Window{}, err
	}
	var w Window
	w.Start = start
	if strings.EqualFold(startDay, "daily") {
		w.Daily = true
	} else if w.Weekday, err = parseWeekday(startDay); err != nil {
		return Window{}, err
	}
	to = strings.TrimSpace(to)
	endDayText, endText, hasDay := strings.Cut(to, " ")
	if !hasDay {
		endText = to
	}
	end, err := parseClock(strings.TrimSpace(endText))
	if err != nil {
		return Window{}, err
	}
	days := time.Duration(0)
	switch {
	case hasDay && w.Daily:
		return Window{}, fmt.Errorf("a daily window's end takes no day")
	case hasDay:
		endDay, err := parseWeekday(endDayText)
		if err != nil {
			return Window{}, err
		}
		days = time.Duration((endDay-w.Weekday+7)%7) * 24 * time.Hour
		if days == 0 && end <= start {
			days = 7 * 24 * time.Hour
		}
	case end <= start:
		days = 24 * time.Hour
	}
	w.Length = days + end - start
	if w.Length <= 0 || w.Length >= 7*24*time.Hour || (w.Daily && w.Length >= 24*time.Hour) {
		return Window{}, fmt.Errorf("a window lasts more than nothing and less than its period")
	}
	return w, nil
}

func parseClock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, fmt.Errorf("time %q: want HH:MM", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

func parseWeekday(s string) (time.Weekday, error) {
	for d := time.Sunday; d <= time.Saturday; d++ {
		if strings.EqualFold(s, d.String()[:3]) {
			return d, nil
		}
	}
	return 0, fmt.Errorf("day %q: want daily or Mon, Tue, Wed, Thu, Fri, Sat, Sun", s)
}

// RestartingUntil reports whether IBKR is restarting at t, and until when.
func (c *Clock) RestartingUntil(t time.Time) (time.Time, bool) {
	_, end, in := c.Maintenance(t)
	return end, in
}

// Maintenance returns IBKR's restart window that contains t, or else the
// next one after t; in reports whether t is inside it. Overlapping windows
// (the daily reset inside the weekend one) count as one. Without windows
// start and end are zero.
func (c *Clock) Maintenance(t time.Time) (start, end time.Time, in bool) {
	type span struct{ from, to time.Time }
	var spans []span
	local := t.In(c.loc)
	day0 := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, c.loc)
	for i := -7; i <= 8; i++ {
		day := day0.AddDate(0, 0, i)
		for _, w := range c.cfg.Maintenance {
			if !w.Daily && day.Weekday() != w.Weekday {
				continue
			}
			from := at(day, w.Start)
			spans = append(spans, span{from, from.Add(w.Length)})
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return a.from.Compare(b.from) })
	merged := spans[:0]
	for _, s := range spans {
		if n := len(merged); n > 0 && !s.from.After(merged[n-1].to) {
			if s.to.After(merged[n-1].to) {
				merged[n-1].to = s.to
			}
			continue
		}
		merged = append(merged, s)
	}
	for _, s := range merged {
		if t.Before(s.to) {
			return s.from, s.to, !t.Before(s.from)
		}
	}
	return time.Time{}, time.Time{}, false
}
