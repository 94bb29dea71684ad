package risk

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
)

// countedSQL is what an entry's row c counts towards the day's usage
// with: every order that may still fill or has filled — pending,
// submitted, unknown, filled, partially filled, and cancelled after a
// part filled.
const countedSQL = `c.side = 'BUY' AND (c.status IN ('pending', 'submitted', 'unknown', 'filled', 'partially_filled')
		       OR (c.status = 'cancelled' AND c.filled_quantity > 0))`

// valueSQL is an entry's estimated value: its quantity at its limit
// price, or else at the signal's reference close.
const valueSQL = `c.quantity * coalesce(c.limit_price, c.ref_price)`

// gateSQL reads a user's risk state but the day's usage: the platform row
// and the user's row. Its argument is the user.
const gateSQL = `
	SELECT p.max_order_value::text, p.max_shares_per_order::text, p.max_orders_per_day::text, p.max_daily_value::text,
		p.halted_live, p.halted_paper, p.halt_reason,
		u.max_order_value::text, u.max_shares_per_order::text, u.max_orders_per_day::text, u.max_daily_value::text,
		coalesce(u.trading_paused, false), coalesce(u.suspended, false), coalesce(u.suspended_reason, '')
	FROM risk_platform p
	LEFT JOIN risk_users u ON u.user_id = $1`

// snapshotSQL reads a user's whole risk state in one statement: gateSQL's
// and the day's entries per mode. Its arguments are the user and the
// day's bounds.
const snapshotSQL = `
	SELECT g.*, q.live_orders, q.live_value::text, q.paper_orders, q.paper_value::text
	FROM (` + gateSQL + `) g
	CROSS JOIN (
		SELECT count(*) FILTER (WHERE c.mode = 'live') AS live_orders,
			coalesce(sum(` + valueSQL + `) FILTER (WHERE c.mode = 'live'), 0) AS live_value,
			count(*) FILTER (WHERE c.mode = 'paper') AS paper_orders,
			coalesce(sum(` + valueSQL + `) FILTER (WHERE c.mode = 'paper'), 0) AS paper_value
		FROM confirmations c
		WHERE c.user_id = $1 AND c.created_at >= $2 AND c.created_at < $3 AND ` + countedSQL + `) q`

// DayCap is the part of the risk check that must be made again under an
// account's order lock, in the statement that records the order: the
// day's caps on entries, against the usage the statement itself counts.
// Two confirms of one account then cannot both pass a cap that only one
// of them fits under. The other checks need no lock: they do not depend
// on what other orders did.
type DayCap struct {
	// Orders and Value are the caps in force (nil: none).
	Orders *string
	Value  *string
	// Start and End bound the exchange's day.
	Start, End time.Time
}

// DayCapOf returns the day caps in force in sn, for an entry made now.
func (s *Service) DayCapOf(sn Snapshot) DayCap {
	eff := sn.Effective()
	start, end := s.day(s.now())
	return DayCap{Orders: eff.Get(MaxOrdersPerDay), Value: eff.Get(MaxDailyValue), Start: start, End: end}
}

// DayCapSQL returns a query that yields one row (orders bigint, value
// numeric, ok boolean): the day's usage of user in mode before this order,
// and whether an entry worth value still fits under the caps. Its
// arguments are SQL expressions (placeholders of the caller's statement)
// for the user, the mode, the order's value, the caps (numeric or NULL
// for none) and the day's bounds, in that order.
func DayCapSQL(user, mode, value, maxOrders, maxValue, start, end string) string {
	return `SELECT u.orders, u.value,
			(` + maxOrders + `::numeric IS NULL OR u.orders + 1 <= ` + maxOrders + `::numeric)
			AND (` + maxValue + `::numeric IS NULL OR u.value + ` + value + `::numeric <= ` + maxValue + `::numeric) AS ok
		FROM (SELECT count(*) AS orders, coalesce(sum(` + valueSQL + `), 0) AS value
			FROM confirmations c
			WHERE c.user_id = ` + user + ` AND c.mode = ` + mode + ` AND c.created_at >= ` + start + ` AND c.created_at < ` + end + `
			  AND ` + countedSQL + `) u`
}

// GateQuery returns the statement and arguments that read userID's
// switches, limits and ceilings now, but not the day's usage, for a
// confirm that folds it into a batch of its own: the day's caps are
// checked by the statement that writes the order, under the account's
// lock, with its own count (DayCapSQL), so counting here too would only
// double the work. Scan its row with ScanGate.
func (s *Service) GateQuery(userID string) (string, []any) {
	return gateSQL, []any{userID}
}

// ScanGate reads the row of GateQuery's statement; the Snapshot's Used is
// nil.
func (s *Service) ScanGate(row pgx.Row) (Snapshot, error) {
	return s.scan(row, nil)
}

// scan reads a row of gateSQL's columns followed by used's.
func (s *Service) scan(row pgx.Row, used []any) (Snapshot, error) {
	var sn Snapshot
	var platform Limits
	var haltedLive, haltedPaper bool
	err := row.Scan(append([]any{&platform.MaxOrderValue, &platform.MaxSharesPerOrder, &platform.MaxOrdersPerDay, &platform.MaxDailyValue,
		&haltedLive, &haltedPaper, &sn.HaltReason,
		&sn.Own.MaxOrderValue, &sn.Own.MaxSharesPerOrder, &sn.Own.MaxOrdersPerDay, &sn.Own.MaxDailyValue,
		&sn.Paused, &sn.Suspended, &sn.SuspendedReason}, used...)...)
	if err != nil {
		return Snapshot{}, fmt.Errorf("read risk state: %w", err)
	}
	sn.Ceilings = s.ceilingsOver(platform)
	sn.Halted = map[string]bool{Live: haltedLive, Paper: haltedPaper}
	return sn, nil
}

// ceilingsOver returns the ceilings in force: Admin → Risk's where set,
// else the environment's.
func (s *Service) ceilingsOver(platform Limits) Limits {
	var l Limits
	for _, n := range Names {
		v := platform.Get(n)
		if v == nil {
			v = s.ceilings.Get(n)
		}
		*l.field(n) = v
	}
	return l
}

// Snapshot reads userID's risk state now, with the day's usage.
func (s *Service) Snapshot(ctx context.Context, userID string) (Snapshot, error) {
	start, end := s.day(s.now())
	var live, paper Usage
	sn, err := s.scan(s.pool.QueryRow(ctx, snapshotSQL, userID, start, end), []any{&live.Orders, &live.Value, &paper.Orders, &paper.Value})
	if err != nil {
		return Snapshot{}, err
	}
	sn.Used = map[string]Usage{Live: live, Paper: paper}
	return sn, nil
}

// RecordRefusal audits a confirm that a limit refused: nothing was
// written or sent, so the audit row is its only trace.
func (s *Service) RecordRefusal(ctx context.Context, userID, signalID, mode string, l Line) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return audit.Record(ctx, tx, audit.Event{At: s.now(), UserID: userID, ActorID: userID, Action: "risk.refused",
			Subject: signalID, Details: map[string]any{"limit": l.Name, "value": l.Limit, "would_be": l.WouldBe, "mode": mode}})
	})
}

// now is the service's clock in UTC.
func (s *Service) nowUTC() time.Time { return s.now().UTC() }
