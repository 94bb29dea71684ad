package market

import "time"

// View is the market's clock as GET /market/clock shows it. Times are UTC.
type View struct {
	Now               time.Time       `json:"now"`
	ExchangeTimeZone  string          `json:"exchange_time_zone"`
	Session           string          `json:"session"`
	Today             TodayView       `json:"today"`
	NextOpen          time.Time       `json:"next_open"`
	Cutoffs           CutoffsView     `json:"cutoffs"`
	BrokerMaintenance MaintenanceView `json:"broker_maintenance"`
}

// TodayView is the exchange's day at the clock's time.
type TodayView struct {
	Date         string     `json:"date"`
	IsTradingDay bool       `json:"is_trading_day"`
	Holiday      *string    `json:"holiday"`
	Open         *time.Time `json:"open"`
	Close        *time.Time `json:"close"`
	EarlyClose   bool       `json:"early_close"`
}

// CutoffsView holds the next cut-off of each auction: when an order for it
// must have reached IBKR.
type CutoffsView struct {
	OPG time.Time `json:"opg"`
	MOC time.Time `json:"moc"`
}

// MaintenanceView says whether IBKR is restarting now, and the current or
// next restart window (null when none is configured).
type MaintenanceView struct {
	Now       bool       `json:"now"`
	NextStart *time.Time `json:"next_start"`
	NextEnd   *time.Time `json:"next_end"`
}

// View returns the market's clock at the clock's current time.
func (c *Clock) View() View {
	now := c.Now()
	d := c.DayOf(now)
	today := TodayView{Date: d.Date.Format(time.DateOnly), IsTradingDay: d.TradingDay, EarlyClose: d.EarlyClose}
	if d.Holiday != "" {
		h := d.Holiday
		today.Holiday = &h
	}
	if d.TradingDay {
		open, close := d.Open.UTC(), d.Close.UTC()
		today.Open, today.Close = &open, &close
	}
	start, end, in := c.Maintenance(now)
	return View{
		Now:              now.UTC(),
		ExchangeTimeZone: TimeZone,
		Session:          c.Session(now),
		Today:            today,
		NextOpen:         c.NextOpen(now).UTC(),
		Cutoffs: CutoffsView{
			OPG: c.Cutoff(Open, now).UTC(),
			MOC: c.Cutoff(Close, now).UTC(),
		},
		BrokerMaintenance: maintenanceView(start, end, in),
	}
}

func maintenanceView(start, end time.Time, in bool) MaintenanceView {
	v := MaintenanceView{Now: in}
	if !start.IsZero() {
		s, e := start.UTC(), end.UTC()
		v.NextStart, v.NextEnd = &s, &e
	}
	return v
}
