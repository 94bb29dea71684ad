package trading

import (
	"context"
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
	t := time.NewTicker(s.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		if _, err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
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
	quantity               int64
	misses                 int
}

// Reconcile runs one pass and returns how many rows it looked at. Rows are
// due when unknown, when pending for longer than PendingGrace (their
// request died), or when an open order's next check has come.
func (s *Service) Reconcile(ctx context.Context) (int, error) {
	rows, err := s.claim(ctx)
	if err != nil {
		return 0, err
	}
	byUser := map[string][]claimed{}
	var users []string
	for _, r := range rows {
		if byUser[r.userID] == nil {
			users = append(users, r.userID)
		}
		byUser[r.userID] = append(byUser[r.userID], r)
	}
	var errsSeen []string
	for _, u := range users {
		if err := s.reconcileUser(ctx, u, byUser[u]); err != nil {
			errsSeen = append(errsSeen, err.Error())
		}
	}
	if len(errsSeen) > 0 {
		return len(rows), fmt.Errorf("reconcile: %s", strings.Join(errsSeen, "; "))
	}
	return len(rows), nil
}

// claim takes due rows with FOR UPDATE SKIP LOCKED and pushes their next
// check out by the lease, so that neither a concurrent pass nor another
// instance takes them while IBKR is asked (outside any transaction).
func (s *Service) claim(ctx context.Context) ([]claimed, error) {
	now := s.cfg.Now().UTC()
	var out []claimed
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id, user_id, status, mode, broker_order_id, filled_quantity::text, avg_fill_price::text, broker_status, quantity, misses
			FROM confirmations
			WHERE open AND next_check_at <= $1 -- open: the partial index confirmations_open
			ORDER BY next_check_at
			LIMIT $2
			FOR UPDATE SKIP LOCKED`, now, s.cfg.ReconcileBatch)
		if err != nil {
			return err
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimed, error) {
			var c claimed
			err := r.Scan(&c.id, &c.userID, &c.status, &c.mode, &c.brokerOrderID, &c.filled, &c.avgPrice, &c.brokerStatus, &c.quantity, &c.misses)
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

// reconcileUser looks one user's claimed rows up at IBKR: orders whose id
// is known by their status, the others by cOID among the live orders.
func (s *Service) reconcileUser(ctx context.Context, userID string, rows []claimed) error {
	acct, err := s.broker.ActiveAccount(ctx, userID)
	if err != nil {
		return fmt.Errorf("user %s: %w", userID, err)
	}
	var live map[string]OrderState
	for _, r := range rows {
		if r.mode != acct.Mode {
			continue // the user switched connections; the lease brings it back later
		}
		var st OrderState
		found := false
		if r.brokerOrderID != nil {
			if st, err = s.broker.OrderStatus(ctx, userID, *r.brokerOrderID); err != nil {
				return fmt.Errorf("order status %s: %w", *r.brokerOrderID, err)
			}
			found = true
		} else {
			if live == nil {
				list, err := s.broker.LiveOrders(ctx, userID)
				if err != nil {
					return fmt.Errorf("live orders: %w", err)
				}
				live = make(map[string]OrderState, len(list))
				for _, o := range list {
					if o.COID != "" {
						live[o.COID] = o
					}
				}
			}
			st, found = live[r.id]
		}
		if err := s.settle(ctx, r, st, found); err != nil {
			return err
		}
	}
	return nil
}

// settle records what reconciliation learned about one row.
func (s *Service) settle(ctx context.Context, r claimed, st OrderState, found bool) error {
	now := s.cfg.Now().UTC()
	var o outcome
	if !found {
		r.misses++
		if r.misses < s.cfg.MissesBeforeFailed {
			_, err := s.pool.Exec(ctx, `UPDATE confirmations SET misses = $2, next_check_at = $3 WHERE id = $1`,
				r.id, r.misses, now.Add(s.cfg.ReconcileInterval))
			return err
		}
		o = outcome{status: StatusFailed, errCode: string(errs.BrokerUnavailable),
			errMessage: "IBKR has no order with this client order id: the order was not placed",
			message:    fmt.Sprintf("not found at IBKR after %d lookups", r.misses), misses: r.misses}
	} else {
		o = track(st, r.quantity)
		if !o.nextCheck.IsZero() {
			o.nextCheck = now.Add(s.cfg.ReconcileInterval)
		}
		if !changed(r, o) {
			_, err := s.pool.Exec(ctx, `UPDATE confirmations SET next_check_at = $2, misses = 0 WHERE id = $1`, r.id, nullTime(o.nextCheck))
			return err
		}
	}
	_, changed, err := apply(ctx, s.pool, r.id, []Status{r.status}, o, now)
	if err == nil && changed {
		s.logger(ctx).Info().Str("confirmation", r.id).Str("from", string(r.status)).Str("status", string(o.status)).Msg("reconciled")
	}
	return err
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
