package market

// The exchange calendar of NASDAQ and NYSE (they close on the same days), as
// the exchanges published it for 2025–2028 (NYSE "Holidays and Trading
// Hours", NASDAQ "Stock Market Holiday Schedule"; read 2026-12-02). Early
// closes end the regular session at 13:00 ET. A date in neither map, on a
// weekday inside the table's years, is a full trading day.
//
// The table must be extended before tableEnd: TestCalendarTableCoversNext90Days
// fails 90 days before it runs out.

// tableStart and tableEnd are the first and last dates the table covers.
const (
	tableStart = "2025-01-01"
	tableEnd   = "2028-12-31"
)

// holidays are the weekdays on which the exchanges are closed all day.
var holidays = map[string]string{
	"2025-01-01": "New Year's Day",
	"2025-01-09": "National Day of Mourning for President Carter",
	"2025-01-20": "Martin Luther King Jr. Day",
	"2025-02-17": "Washington's Birthday",
	"2025-04-18": "Good Friday",
	"2025-05-26": "Memorial Day",
	"2025-06-19": "Juneteenth",
	"2025-07-04": "Independence Day",
	"2025-09-01": "Labor Day",
	"2025-11-27": "Thanksgiving Day",
	"2025-12-25": "Christmas Day",

	"2026-01-01": "New Year's Day",
	"2026-01-19": "Martin Luther King Jr. Day",
	"2026-02-16": "Washington's Birthday",
	"2026-04-03": "Good Friday",
	"2026-05-25": "Memorial Day",
	"2026-06-19": "Juneteenth",
	"2026-07-03": "Independence Day (observed)",
	"2026-09-07": "Labor Day",
	"2026-11-26": "Thanksgiving Day",
	"2026-12-25": "Christmas Day",

	"2027-01-01": "New Year's Day",
	"2027-01-18": "Martin Luther King Jr. Day",
	"2027-02-15": "Washington's Birthday",
	"2027-03-26": "Good Friday",
	"2027-05-31": "Memorial Day",
	"2027-06-18": "Juneteenth (observed)",
	"2027-07-05": "Independence Day (observed)",
	"2027-09-06": "Labor Day",
	"2027-11-25": "Thanksgiving Day",
	"2027-12-24": "Christmas Day (observed)",

	// 2028-01-01 is a Saturday; the exchanges do not close on Friday
	// 2027-12-31 for it.
	"2028-01-17": "Martin Luther King Jr. Day",
	"2028-02-21": "Washington's Birthday",
	"2028-04-14": "Good Friday",
	"2028-05-29": "Memorial Day",
	"2028-06-19": "Juneteenth",
	"2028-07-04": "Independence Day",
	"2028-09-04": "Labor Day",
	"2028-11-23": "Thanksgiving Day",
	"2028-12-25": "Christmas Day",
}

// earlyCloses are the trading days whose regular session ends at 13:00 ET.
var earlyCloses = map[string]string{
	"2025-07-03": "the day before Independence Day",
	"2025-11-28": "the day after Thanksgiving",
	"2025-12-24": "Christmas Eve",

	"2026-11-27": "the day after Thanksgiving",
	"2026-12-24": "Christmas Eve",

	"2027-11-26": "the day after Thanksgiving",

	"2028-07-03": "the day before Independence Day",
	"2028-11-24": "the day after Thanksgiving",
}
