package risk

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"

	"github.com/ordertune/ordertune/internal/errs"
)

// Modes, as trading names them.
const (
	Live  = "live"
	Paper = "paper"
)

// moneyRE and countRE are what a limit may be: dollars with at most 2
// decimals, or a whole number; at most 12 integer digits either way.
var (
	moneyRE = regexp.MustCompile(`^[0-9]{1,12}(\.[0-9]{1,2})?$`)
	countRE = regexp.MustCompile(`^[0-9]{1,9}$`)
)

// isMoney reports whether the named limit is in dollars.
func isMoney(name string) bool { return name == MaxOrderValue || name == MaxDailyValue }

// parseLimit checks a limit's text and returns it normalized (dollars
// with 2 decimals, counts without leading zeros). Its error is the
// client-safe message for the field.
func parseLimit(name, v string) (string, error) {
	v = strings.TrimSpace(v)
	if isMoney(name) {
		if !moneyRE.MatchString(v) {
			return "", fmt.Errorf("must be a dollar amount of at least 0 with at most 2 decimals, such as \"5000\" or \"2500.50\"")
		}
		r, _ := new(big.Rat).SetString(v)
		return r.FloatString(2), nil
	}
	if !countRE.MatchString(v) {
		return "", fmt.Errorf("must be a whole number of at least 0")
	}
	r, _ := new(big.Rat).SetString(v)
	return r.Num().String(), nil
}

// rat parses a stored or normalized decimal; nil for nil.
func rat(v *string) *big.Rat {
	if v == nil {
		return nil
	}
	r, ok := new(big.Rat).SetString(*v)
	if !ok {
		return nil
	}
	return r
}

// lower returns the lower of two optional limits.
func lower(a, b *string) *string {
	ra, rb := rat(a), rat(b)
	switch {
	case ra == nil:
		return b
	case rb == nil:
		return a
	case rb.Cmp(ra) < 0:
		return b
	}
	return a
}

// Usage is what a user's entries of one mode used of the day's limits.
type Usage struct {
	Orders int64
	Value  string // decimal dollars
}

// Snapshot is a user's risk state at one moment: the limits in force, the
// switches, and the day's usage per mode.
type Snapshot struct {
	// Own are the user's own limits; Ceilings the platform's.
	Own, Ceilings   Limits
	Paused          bool
	Suspended       bool
	SuspendedReason string
	Halted          map[string]bool // by mode
	HaltReason      string
	Used            map[string]Usage // by mode: the exchange's day so far; nil when not counted (GateQuery)
}

// Effective returns the limits in force: each the lower of the user's own
// and the ceiling.
func (sn Snapshot) Effective() Limits {
	var l Limits
	for _, n := range Names {
		*l.field(n) = lower(sn.Own.Get(n), sn.Ceilings.Get(n))
	}
	return l
}

// Line is one limit as the confirm dialog shows it: the limit in force,
// what the order would make it, and whether that passes.
type Line struct {
	Name    string `json:"name"`
	Limit   string `json:"limit"`
	WouldBe string `json:"would_be"`
	OK      bool   `json:"ok"`
}

// Check returns the limit lines of an entry of quantity shares worth
// value (decimal dollars) in mode. Without the day's usage (a snapshot of
// GateQuery) it has no line for the day's caps.
func (sn Snapshot) Check(mode string, quantity int64, value string) []Line {
	eff := sn.Effective()
	used, counted := sn.Used[mode]
	v, ok := new(big.Rat).SetString(value)
	if !ok {
		v = new(big.Rat)
	}
	day, ok := new(big.Rat).SetString(used.Value)
	if !ok {
		day = new(big.Rat)
	}
	day.Add(day, v)
	would := map[string]*big.Rat{
		MaxOrderValue:     v,
		MaxSharesPerOrder: new(big.Rat).SetInt64(quantity),
		MaxOrdersPerDay:   new(big.Rat).SetInt64(used.Orders + 1),
		MaxDailyValue:     day,
	}
	lines := make([]Line, 0, len(Names))
	for _, n := range Names {
		lim := eff.Get(n)
		if lim == nil || !counted && (n == MaxOrdersPerDay || n == MaxDailyValue) {
			continue
		}
		w := would[n]
		text := w.Num().String()
		if isMoney(n) {
			text = w.FloatString(2)
		}
		lines = append(lines, Line{Name: n, Limit: *lim, WouldBe: text, OK: w.Cmp(rat(lim)) <= 0})
	}
	return lines
}

// LimitError is a confirm refused by a limit: the problem names the limit,
// its value and what the order would have made it.
type LimitError struct {
	Line Line
	err  *errs.Error
}

func (e *LimitError) Error() string { return e.err.Error() }

// Unwrap returns the vocabulary's error (risk_limit_exceeded).
func (e *LimitError) Unwrap() error { return e.err }

// labels are the limits as the messages name them.
var labels = map[string]string{
	MaxOrderValue:     "maximum order value",
	MaxSharesPerOrder: "maximum shares per order",
	MaxOrdersPerDay:   "maximum orders per day",
	MaxDailyValue:     "maximum daily value",
}

// Refusal returns a *LimitError for the first line that fails, or nil.
func Refusal(lines []Line) error {
	for _, l := range lines {
		if l.OK {
			continue
		}
		money := ""
		if isMoney(l.Name) {
			money = "$"
		}
		e := &errs.Error{Code: errs.RiskLimitExceeded,
			Message: fmt.Sprintf("this order would make your %s %s%s, above its limit of %s%s; nothing was sent (change your limits in Settings → Risk)",
				labels[l.Name], money, l.WouldBe, money, l.Limit),
			Fields: []errs.FieldError{{Field: l.Name, Message: fmt.Sprintf("limit %s, this order would make it %s", l.Limit, l.WouldBe)}}}
		return &LimitError{Line: l, err: e}
	}
	return nil
}

// Gate returns the switch that refuses an order in mode, or nil. An exit
// (it only closes what the user holds) passes everything but a halt of
// its mode.
func (sn Snapshot) Gate(mode string, exit bool) error {
	if sn.Halted[mode] {
		reason := sn.HaltReason
		if reason == "" {
			reason = "no reason given"
		}
		return errs.E(errs.TradingHalted, "trading in %s accounts is halted by the platform: %s", mode, reason)
	}
	if exit {
		return nil
	}
	if sn.Suspended {
		reason := sn.SuspendedReason
		if reason == "" {
			reason = "no reason given"
		}
		return errs.E(errs.UserSuspended, "your trading is suspended by an administrator: %s; exits of what you hold still go through", reason)
	}
	if sn.Paused {
		return errs.E(errs.TradingPaused, "you paused trading in Settings → Risk; resume it there to place entries (exits still go through)")
	}
	return nil
}
