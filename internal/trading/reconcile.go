package trading

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/logging"
)

// RunReconciler settles and tracks confirmations until ctx ends: every
// ReconcileInterval it claims the rows that are due and looks them up at
// IBKR.
func (s *Service) RunReconciler(ctx context.Context) {
	ctx = logging.With(ctx, s.log, func(l zerolog.Context) zerolog.Context { return l.Str("worker", "reconcile") })
	// Nobody waits on a pass: it never takes a user's IBKR session back
	// from another login, and looks again after its back-off.
	ctx = WithoutTakeBack(ctx)
	t := time.NewTicker(s.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		switch _, err := s.Reconcile(ctx); {
		case err == nil || ctx.Err() != nil:
		case errs.All(err, errs.BrokerSessionCompeting):
			// Users working in Client Portal or TWS: their orders are
			// looked up once the session is free, each row after its
			// back-off. Nothing for an operator to act on.
			s.logger(ctx).Info().Err(err).Msg("reconciliation: orders wait while another login holds their users' IBKR session")
		default:
			s.logger(ctx).Warn().Err(err).Msg("reconciliation pass failed; retrying next interval")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// claimed is a row taken by one reconciliation pass.
type claimed struct {
	id, userID             string
	status                 Status
	mode                   Mode
	brokerOrderID          *string
	filled                 string
	avgPrice, brokerStatus *string
	errMessage             *string
	quantity               int64
	// misses counts the lookups in a row that did not find the order (or
	// could not ask); it sets the row's back-off.
	misses               int
	createdAt, updatedAt time.Time
}

// Reconcile runs one pass and returns how many rows it looked at. Rows are
// due when unknown, when pending for longer than PendingGrace (their
// request died), or when an open order's next check has come. Each row is
// looked up and settled on its own, with its own back-off: one that IBKR
// cannot answer for never holds up the user's others.
func (s *Service) Reconcile(ctx context.Context) (int, error) {
	claimedRows, err := s.claim(ctx)
	if err != nil {
		return 0, err
	}
	rows, keptErr := s.recordKept(ctx, claimedRows)
	byUser := map[string][]claimed{}
	var users []string
	for _, r := range rows {
		if byUser[r.userID] == nil {
			users = append(users, r.userID)
		}
		byUser[r.userID] = append(byUser[r.userID], r)
	}
	var errsSeen []error
	if keptErr != nil {
		errsSeen = append(errsSeen, fmt.Errorf("record kept outcomes: %w", keptErr))
	}
	for _, u := range users {
		if err := s.reconcileUser(ctx, u, byUser[u]); err != nil {
			errsSeen = append(errsSeen, err)
		}
	}
	if len(errsSeen) > 0 {
		return len(claimedRows), passErrors(errsSeen)
	}
	return len(claimedRows), nil
}

// passErrors are a pass's failures, one per user (and the kept outcomes'),
// on one log line.
type passErrors []error

func (e passErrors) Error() string {
	parts := make([]string, len(e))
	for i, err := range e {
		parts[i] = err.Error()
	}
	return "reconcile: " + strings.Join(parts, "; ")
}

func (e passErrors) Unwrap() []error { return e }

// claim takes due rows with FOR UPDATE SKIP LOCKED and pushes their next
// check out by the lease, so that neither a concurrent pass nor another
// instance takes them while IBKR is asked (outside any transaction). Each
// row then gets its own next check when it is settled.
func (s *Service) claim(ctx context.Context) ([]claimed, error) {
	now := s.cfg.Now().UTC()
	var out []claimed
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id, user_id, status, mode, broker_order_id, filled_quantity::text, avg_fill_price::text, broker_status,
				error_message, quantity, misses, created_at, updated_at
			FROM confirmations
			WHERE open AND next_check_at <= $1 -- open: the partial index confirmations_open
				AND ($3 = '' OR NOT EXISTS (
					SELECT 1 FROM broker_session_leases l
					WHERE l.user_id = confirmations.user_id AND l.owner <> $3 AND l.expires_at > now()))
			ORDER BY next_check_at
			LIMIT $2
			FOR UPDATE OF confirmations SKIP LOCKED`, now, s.cfg.ReconcileBatch, s.cfg.Replica)
		if err != nil {
			return err
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimed, error) {
			var c claimed
			err := r.Scan(&c.id, &c.userID, &c.status, &c.mode, &c.brokerOrderID, &c.filled, &c.avgPrice, &c.brokerStatus,
				&c.errMessage, &c.quantity, &c.misses, &c.createdAt, &c.updatedAt)
			return c, err
		})
		if err != nil {
			return err
		}
		var ids []string
		for _, c := range list {
			if s.isInflight(c.id) { // this process is placing it right now
				continue
			}
			out = append(out, c)
			ids = append(ids, c.id)
		}
		if len(ids) == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE confirmations SET next_check_at = $2 WHERE id = ANY($1)`, ids, now.Add(s.cfg.ReconcileLease))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim confirmations: %w", err)
	}
	return out, nil
}

// reconcileUser looks one user's claimed rows up at IBKR, each on its own:
// a row whose lookup fails backs off alone while the others settle.
func (s *Service) reconcileUser(ctx context.Context, userID string, rows []claimed) error {
	var problems []error
	acct, err := s.broker.ActiveAccount(ctx, userID)
	if err != nil {
		problems = append(problems, fmt.Errorf("user %s: %w", userID, err))
	}
	lk := &lookups{broker: s.broker, userID: userID}
	for _, r := range rows {
		var f found
		switch {
		case err != nil:
			f.err = err
		case r.mode != acct.Mode:
			// The user switched connections: the order cannot be asked
			// about now.
			f.err = fmt.Errorf("the %s connection is not active", r.mode)
		default:
			f = lk.find(ctx, r)
			if f.err != nil {
				problems = append(problems, fmt.Errorf("user %s, confirmation %s: %w", userID, r.id, f.err))
			}
		}
		if err := s.settle(ctx, r, f); err != nil {
			problems = append(problems, fmt.Errorf("settle %s: %w", r.id, err))
		}
	}
	return errors.Join(problems...)
}

// backoff is the pause before the next lookup of a row after misses
// lookups in a row that did not find it: ReconcileInterval, doubling, at
// most ReconcileBackoffMax.
func (s *Service) backoff(misses int) time.Duration {
	d := s.cfg.ReconcileInterval
	for i := 1; i < misses && d < s.cfg.ReconcileBackoffMax; i++ {
		d *= 2
	}
	return min(d, s.cfg.ReconcileBackoffMax)
}

// track maps IBKR's order status to a confirmation outcome; nextCheck is
// set (to any non-zero time) while the order can still change.
func track(st OrderState, quantity int64) outcome {
	filled, _ := parseDecimal(orZero(st.Filled))
	some := filled != nil && filled.Sign() > 0
	o := outcome{brokerOrderID: st.OrderID, brokerStatus: st.Status, filled: normDecimal(st.Filled), avgPrice: normDecimal(st.AvgPrice)}
	if !some {
		o.avgPrice = ""
	}
	switch strings.ToLower(st.Status) {
	case "filled":
		o.status, o.message = StatusFilled, "filled"
	case "cancelled", "inactive", "apicancelled":
		if some {
			o.status, o.message = StatusPartiallyFilled, "partially filled; the rest was cancelled"
		} else {
			o.status, o.message = StatusCancelled, "cancelled at IBKR"
		}
	default:
		o.nextCheck = time.Unix(1, 0)
		if some {
			o.status, o.message = StatusPartiallyFilled, "partially filled; the rest is working"
		} else {
			o.status, o.message = StatusSubmitted, "working at IBKR ("+st.Status+")"
		}
	}
	return o
}

// changed reports whether o says something new about r.
func changed(r claimed, o outcome) bool {
	if r.status != o.status {
		return true
	}
	if r.brokerOrderID == nil || *r.brokerOrderID != o.brokerOrderID {
		return true
	}
	if r.brokerStatus == nil || !strings.EqualFold(*r.brokerStatus, o.brokerStatus) {
		return true
	}
	if !sameDecimal(r.filled, o.filled) {
		return true
	}
	if o.avgPrice != "" && (r.avgPrice == nil || !sameDecimal(*r.avgPrice, o.avgPrice)) {
		return true
	}
	return false
}

func sameDecimal(a, b string) bool {
	x, ok1 := parseDecimal(orZero(a))
	y, ok2 := parseDecimal(orZero(b))
	return ok1 && ok2 && x.Cmp(y) == 0
}

func orZero(s string) string {
	if strings.TrimSpace(s) == "" {
		return "0"
	}
	return s
}

// normDecimal keeps a decimal IBKR sent ("10.0", "187.25") or drops
// anything else.
func normDecimal(s string) string {
	s = strings.TrimSpace(s)
	if _, ok := parseDecimal(s); !ok {
		return ""
	}
	return s
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
