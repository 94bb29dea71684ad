package trading

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
)

// OutcomeUnknownMessage is what a confirmation shows, to its user and to
// the admins, once its order has not been found at IBKR for
// Config.OutcomeUnknownAfter. It is never shown as failed: absence from
// IBKR's lists is no evidence that the order was not placed (the orders
// list covers only the current brokerage session, and IBKR forgets order
// ids), and a user told "not placed" would confirm again and double the
// position.
const OutcomeUnknownMessage = "outcome unknown — check your IBKR account: the order was sent, but IBKR has not confirmed it; " +
	"it is not among the account's current orders or its executions of the last 7 days. " +
	"Ordertune keeps looking; do not confirm again before checking the account at IBKR."

// lookupMessage is what an unknown confirmation shows while it is being
// looked up.
const lookupMessage = "IBKR's answer about this order was not received; it is being looked up by its client order id"

// executionsWindow is how long after its confirmation an order can still
// be found among the executions.
const executionsWindow = MaxExecutionDays * 24 * time.Hour

// Where reconciliation found an order.
const (
	viaStatus     = "order status"
	viaOrders     = "orders list"
	viaExecutions = "executions"
)

// found is what one lookup learned about one row.
type found struct {
	state OrderState
	// ok reports whether the order was found; via says where.
	ok  bool
	via string
	// gone reports whether IBKR answered that it has no order with the
	// row's order id.
	gone bool
	// err is a lookup that failed: the order may exist all the same.
	err error
}

// lookups asks the broker about one user's rows in one pass, fetching each
// of the user's lists (orders, executions) at most once, and only when a
// row needs it: both are paced to one call per 5 s at IBKR.
type lookups struct {
	broker Broker
	userID string

	liveDone bool
	live     map[string]OrderState
	liveErr  error

	execDone bool
	execs    []Execution
	execErr  error
}

// find looks r's order up by its order id when it has one, then by its
// client order id among the session's orders, then among the executions of
// the last 7 days, which outlive IBKR's nightly reset and a re-login.
func (l *lookups) find(ctx context.Context, r claimed) found {
	var f found
	if r.brokerOrderID != nil {
		st, err := l.broker.OrderStatus(ctx, l.userID, *r.brokerOrderID)
		switch {
		case err == nil:
			return found{state: st, ok: true, via: viaStatus}
		case errors.Is(err, ErrOrderNotFound):
			f.gone = true
		default:
			f.err = fmt.Errorf("order status %s: %w", *r.brokerOrderID, err)
		}
	}
	if st, ok, err := l.liveOrder(ctx, r.id); ok {
		return found{state: st, ok: true, via: viaOrders, gone: f.gone}
	} else if err != nil && f.err == nil {
		f.err = err
	}
	if st, ok, err := l.executed(ctx, r); ok {
		return found{state: st, ok: true, via: viaExecutions, gone: f.gone}
	} else if err != nil && f.err == nil {
		f.err = err
	}
	return f
}

// liveOrder finds the order with client order id coid in the user's
// orders list.
func (l *lookups) liveOrder(ctx context.Context, coid string) (OrderState, bool, error) {
	if !l.liveDone {
		l.liveDone = true
		list, err := l.broker.LiveOrders(ctx, l.userID)
		if err != nil {
			l.liveErr = fmt.Errorf("live orders: %w", err)
		}
		l.live = make(map[string]OrderState, len(list))
		for _, o := range list {
			if o.COID != "" {
				l.live[o.COID] = o
			}
		}
	}
	st, ok := l.live[coid]
	return st, ok, l.liveErr
}

// executed sums r's fills among the executions (matched by client order
// id, or by order id) into an order state: filled when they add up to the
// quantity.
func (l *lookups) executed(ctx context.Context, r claimed) (OrderState, bool, error) {
	if !l.execDone {
		l.execDone = true
		l.execs, l.execErr = l.broker.Executions(ctx, l.userID, MaxExecutionDays)
		if l.execErr != nil {
			l.execErr = fmt.Errorf("executions: %w", l.execErr)
		}
	}
	total, value := new(big.Rat), new(big.Rat)
	seen := map[string]bool{}
	st := OrderState{COID: r.id}
	for _, e := range l.execs {
		mine := e.COID == r.id || r.brokerOrderID != nil && e.OrderID != "" && e.OrderID == *r.brokerOrderID
		if !mine || e.ID != "" && seen[e.ID] {
			continue
		}
		q, ok1 := parseExecDecimal(e.Quantity)
		p, ok2 := parseExecDecimal(e.Price)
		if !ok1 || !ok2 || q.Sign() <= 0 {
			continue
		}
		seen[e.ID] = true
		total.Add(total, q)
		value.Add(value, new(big.Rat).Mul(q, p))
		if st.OrderID == "" {
			st.OrderID = e.OrderID
		}
	}
	if total.Sign() == 0 {
		return OrderState{}, false, l.execErr
	}
	st.Filled = trimDecimal(formatDecimal(total, 4))
	st.AvgPrice = trimDecimal(formatDecimal(new(big.Rat).Quo(value, total), 6))
	st.Status = "Submitted" // some filled; whether the rest still works is not known
	if total.Cmp(ratInt(r.quantity)) >= 0 {
		st.Status = "Filled"
	}
	return st, true, nil
}

// execDecimalRE is a quantity or price as IBKR sends them in executions.
var execDecimalRE = regexp.MustCompile(`^[0-9]{1,15}(\.[0-9]{1,12})?$`)

func parseExecDecimal(s string) (*big.Rat, bool) {
	s = strings.TrimSpace(s)
	if !execDecimalRE.MatchString(s) {
		return nil, false
	}
	return new(big.Rat).SetString(s)
}

// settle records what reconciliation learned about one row. A row whose
// order was not found is never failed: it stays (or becomes) unknown and
// is looked up again after its back-off; after OutcomeUnknownAfter it says
// OutcomeUnknownMessage, and after the executions window it is no longer
// looked up.
func (s *Service) settle(ctx context.Context, r claimed, f found) error {
	now := s.cfg.Now().UTC()
	if f.ok {
		o := track(f.state, r.quantity)
		switch {
		case f.via == viaExecutions && !o.nextCheck.IsZero():
			// Part filled, and the order's own state is not to be had:
			// keep looking, with back-off, while executions can show more.
			o.message = "partially filled (found among IBKR's executions; the state of the rest is not known)"
			o.misses = r.misses + 1
			o.nextCheck = now.Add(s.backoff(o.misses))
			if now.Sub(r.createdAt) > executionsWindow {
				o.nextCheck = time.Time{}
			}
		case f.via == viaExecutions:
			o.message += " (found among IBKR's executions)"
		case !o.nextCheck.IsZero():
			o.nextCheck = now.Add(s.cfg.ReconcileInterval)
		}
		if !changed(r, o) && r.errMessage == nil {
			_, err := s.pool.Exec(ctx, `UPDATE confirmations SET next_check_at = $2, misses = $3 WHERE id = $1`, r.id, nullTime(o.nextCheck), o.misses)
			return err
		}
		return s.recordReconciled(ctx, r, o, now)
	}

	misses := r.misses + 1
	next := now.Add(s.backoff(misses))
	lookingUp := func(message string) outcome {
		return outcome{status: StatusUnknown, errCode: string(errs.BrokerOutcomeUnknown), errMessage: lookupMessage,
			message: message, nextCheck: next, misses: misses}
	}
	var o outcome
	switch escalated := r.errMessage != nil && *r.errMessage == OutcomeUnknownMessage; {
	case r.status == StatusPending:
		// Its request died before recording IBKR's answer; whether a byte
		// reached IBKR is not known.
		o = lookingUp("the confirm request ended before IBKR's answer was recorded; looking the order up by its client order id")
	case f.gone && r.status != StatusUnknown:
		o = lookingUp("IBKR no longer knows the order id (it may have restarted); looking the order up by its client order id")
	case r.status == StatusUnknown && !escalated && now.Sub(r.updatedAt) >= s.cfg.OutcomeUnknownAfter:
		o = outcome{status: StatusUnknown, errCode: string(errs.BrokerOutcomeUnknown), errMessage: OutcomeUnknownMessage,
			message:   fmt.Sprintf("not found at IBKR for %s (%d lookups): outcome unknown, shown to the user", now.Sub(r.updatedAt).Round(time.Second), misses),
			nextCheck: next, misses: misses}
		s.logger(ctx).Warn().Str("confirmation", r.id).Str("user", r.userID).Int("lookups", misses).
			Msg("order outcome unknown: not found at IBKR; the user is told to check the IBKR account")
	case r.status == StatusUnknown && escalated && now.Sub(r.createdAt) > executionsWindow:
		// IBKR's executions reach no further back: stop looking.
		_, err := s.pool.Exec(ctx, `UPDATE confirmations SET misses = $2, next_check_at = NULL WHERE id = $1`, r.id, misses)
		return err
	default:
		_, err := s.pool.Exec(ctx, `UPDATE confirmations SET misses = $2, next_check_at = $3 WHERE id = $1`, r.id, misses, next)
		return err
	}
	return s.recordReconciled(ctx, r, o, now)
}

// recordReconciled records what reconciliation learned about r.
func (s *Service) recordReconciled(ctx context.Context, r claimed, o outcome, now time.Time) error {
	_, changed, err := s.applyOutcome(ctx, r.id, []Status{r.status}, o, now)
	if err == nil && changed {
		s.logger(ctx).Info().Str("confirmation", r.id).Str("from", string(r.status)).Str("status", string(o.status)).Msg("reconciled")
	}
	return err
}
