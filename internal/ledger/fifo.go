package ledger

import (
	"math/big"
	"time"
)

// fill is one stored execution as the FIFO reads it.
type fill struct {
	executionID string
	// confirmationID is "" for an external execution.
	confirmationID string
	at             time.Time
	mode, ticker   string
	// strategy is the strategy of the confirmation's signal; "" for an
	// external execution, which is never attributed to one.
	strategy               string
	side                   string // BUY or SELL
	qty, price, commission *big.Rat
}

// RoundTrip is the part of one entry execution that one exit execution
// closed: the unit of realized P&L.
type RoundTrip struct {
	Mode, Ticker string
	// Strategy is "" for executions not placed through Ordertune.
	Strategy string
	// EntryConfirmationID and ExitConfirmationID are "" for external
	// executions.
	EntryConfirmationID, ExitConfirmationID string
	// ExitExecutionID is the stored id of the exit execution.
	ExitExecutionID    string
	OpenedAt, ClosedAt time.Time
	Quantity           *big.Rat
	EntryPrice         *big.Rat
	ExitPrice          *big.Rat
	// Commissions are the entry's commission in proportion to the
	// quantity closed plus the exit's in proportion to its quantity.
	Commissions *big.Rat
	// PnL is (exit − entry) × quantity − Commissions.
	PnL *big.Rat
}

// lot is what is left of one entry execution.
type lot struct {
	f    fill
	left *big.Rat
}

// streamKey separates the FIFO queues: an exit sells what an entry of the
// same mode (account), ticker and strategy bought, as the confirm flow's
// exit quantity does; external executions form their own queue per ticker.
type streamKey struct{ mode, ticker, strategy string }

// roundTrips matches exits to entries first in, first out, per stream,
// over fills sorted oldest first. It returns the round trips in the order
// the exits came, and the entry confirmations (ids) whose bought quantity
// is all sold. A sell with nothing left to close (a short sale, or shares
// bought before the ledger's history) realizes nothing.
func roundTrips(fills []fill) (trips []RoundTrip, closed map[string]bool) {
	queues := map[streamKey][]*lot{}
	// open counts, per entry confirmation, its lots with shares left.
	open := map[string]int{}
	seen := map[string]bool{}
	for _, f := range fills {
		k := streamKey{f.mode, f.ticker, f.strategy}
		if f.side == "BUY" {
			queues[k] = append(queues[k], &lot{f: f, left: new(big.Rat).Set(f.qty)})
			if f.confirmationID != "" {
				open[f.confirmationID]++
				seen[f.confirmationID] = true
			}
			continue
		}
		want := new(big.Rat).Set(f.qty)
		q := queues[k]
		for len(q) > 0 && want.Sign() > 0 {
			l := q[0]
			take := minRat(want, l.left)
			entryShare := share(l.f.commission, take, l.f.qty)
			exitShare := share(f.commission, take, f.qty)
			comm := new(big.Rat).Add(entryShare, exitShare)
			gross := new(big.Rat).Mul(new(big.Rat).Sub(f.price, l.f.price), take)
			trips = append(trips, RoundTrip{
				Mode: f.mode, Ticker: f.ticker, Strategy: f.strategy,
				EntryConfirmationID: l.f.confirmationID, ExitConfirmationID: f.confirmationID, ExitExecutionID: f.executionID,
				OpenedAt: l.f.at, ClosedAt: f.at, Quantity: take, EntryPrice: l.f.price, ExitPrice: f.price,
				Commissions: comm, PnL: gross.Sub(gross, comm),
			})
			want.Sub(want, take)
			l.left.Sub(l.left, take)
			if l.left.Sign() == 0 {
				q = q[1:]
				if l.f.confirmationID != "" {
					open[l.f.confirmationID]--
				}
			}
		}
		queues[k] = q
	}
	closed = map[string]bool{}
	for id := range seen {
		if open[id] == 0 {
			closed[id] = true
		}
	}
	return trips, closed
}

// share is total × part / whole: a commission in proportion to the
// quantity it is charged for.
func share(total, part, whole *big.Rat) *big.Rat {
	if total == nil || total.Sign() == 0 || whole.Sign() == 0 {
		return new(big.Rat)
	}
	r := new(big.Rat).Mul(total, part)
	return r.Quo(r, whole)
}

func minRat(a, b *big.Rat) *big.Rat {
	if a.Cmp(b) <= 0 {
		return new(big.Rat).Set(a)
	}
	return new(big.Rat).Set(b)
}
