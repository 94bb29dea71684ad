package ledger

import (
	"context"
	"math/big"
	"slices"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
)

// Groupings of GET /pnl.
const (
	ByDay      = "day"
	ByMonth    = "month"
	ByStrategy = "strategy"
	ByTicker   = "ticker"
)

// ExternalStrategy is the strategy key of round trips of executions not
// placed through Ordertune.
const ExternalStrategy = "external"

// PnLFilter selects round trips by the exchange day (America/New_York)
// their exit executed on, and groups them.
type PnLFilter struct {
	// From and To are exchange days, both included; zero: unbounded.
	From, To time.Time
	// Group is ByDay (default), ByMonth, ByStrategy or ByTicker.
	Group string
	// Mode is "live", "paper" or "" (both).
	Mode string
}

// PnLRow is one group of realized P&L; amounts are decimals to the cent.
type PnLRow struct {
	Key         string `json:"key"`
	RealizedPnL string `json:"realized_pnl"`
	Commissions string `json:"commissions"`
	// Trades is how many exit executions realized P&L in the group.
	Trades int `json:"trades"`
}

// PnL returns the user's realized P&L, FIFO per round trip with
// commissions, grouped and ordered by key. The FIFO runs over the whole
// history, so that an exit in the period is matched with its entry before
// it.
func (s *Service) PnL(ctx context.Context, userID string, f PnLFilter) ([]PnLRow, error) {
	if f.Group == "" {
		f.Group = ByDay
	}
	if !slices.Contains([]string{ByDay, ByMonth, ByStrategy, ByTicker}, f.Group) {
		return nil, errs.Fields("invalid group", errs.FieldError{Field: "group", Message: "must be day, month, strategy or ticker"})
	}
	fills, err := s.loadFills(ctx, userID)
	if err != nil {
		return nil, err
	}
	trips, _ := roundTrips(fills)
	return group(trips, f, s.cfg.Market.Location()), nil
}

// group sums the round trips f selects by f.Group.
func group(trips []RoundTrip, f PnLFilter, loc *time.Location) []PnLRow {
	type acc struct {
		pnl, comm *big.Rat
		exits     map[string]bool
	}
	by := map[string]*acc{}
	from, to := dateKey(f.From), dateKey(f.To)
	for _, t := range trips {
		day := t.ClosedAt.In(loc).Format(time.DateOnly)
		if f.Mode != "" && t.Mode != f.Mode || !f.From.IsZero() && day < from || !f.To.IsZero() && day > to {
			continue
		}
		var key string
		switch f.Group {
		case ByMonth:
			key = day[:7]
		case ByStrategy:
			key = t.Strategy
			if key == "" {
				key = ExternalStrategy
			}
		case ByTicker:
			key = t.Ticker
		default:
			key = day
		}
		a := by[key]
		if a == nil {
			a = &acc{pnl: new(big.Rat), comm: new(big.Rat), exits: map[string]bool{}}
			by[key] = a
		}
		a.pnl.Add(a.pnl, t.PnL)
		a.comm.Add(a.comm, t.Commissions)
		a.exits[t.ExitExecutionID] = true
	}
	out := make([]PnLRow, 0, len(by))
	for k, a := range by {
		out = append(out, PnLRow{Key: k, RealizedPnL: cents(a.pnl), Commissions: cents(a.comm), Trades: len(a.exits)})
	}
	slices.SortFunc(out, func(a, b PnLRow) int {
		if f.Group == ByStrategy {
			return strategyOrder(a.Key) - strategyOrder(b.Key)
		}
		if a.Key < b.Key {
			return -1
		}
		if a.Key > b.Key {
			return 1
		}
		return 0
	})
	return out
}

// strategyOrder sorts the roman strategy names I..IX in order, external last.
func strategyOrder(k string) int {
	if i := slices.Index([]string{"I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX"}, k); i >= 0 {
		return i
	}
	return 100
}

func dateKey(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.DateOnly)
}

// cents renders r to the cent, rounded half away from zero.
func cents(r *big.Rat) string {
	s := r.FloatString(2)
	if s == "-0.00" {
		return "0.00"
	}
	return s
}
