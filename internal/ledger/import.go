package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/trading"
)

// ImportResult says what one import did.
type ImportResult struct {
	// Read is how many executions IBKR listed; Stored how many were new;
	// Skipped how many were unreadable (logged).
	Read, Stored, Skipped int
	// Recovered is how many confirmations' fills were brought up to their
	// executions.
	Recovered int
}

// Import reads the executions of the user's active account over IBKR's
// whole window (7 days), stores the new ones (each once: IBKR's execution
// id is unique per tenant), matches each to its confirmation by client
// order id or order id, recovers fills that order polling missed, and
// updates the confirmations' commissions and closed flags. Running it
// again changes nothing. IBKR is asked before the transaction begins.
func (s *Service) Import(ctx context.Context, userID string) (ImportResult, error) {
	var res ImportResult
	acct, err := s.cfg.Broker.ActiveAccount(ctx, userID)
	if err != nil {
		return res, fmt.Errorf("import executions of %s: %w", userID, err)
	}
	execs, err := s.cfg.Broker.Executions(ctx, userID, trading.MaxExecutionDays)
	if err != nil {
		return res, fmt.Errorf("import executions of %s: %w", userID, err)
	}
	res.Read = len(execs)
	now := s.cfg.Now().UTC()
	var touched []string
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res.Stored, res.Skipped, touched = 0, 0, nil
		seen := map[string]bool{}
		for _, e := range execs {
			row, ok := readExecution(e)
			if !ok {
				res.Skipped++
				s.logger(ctx).Warn().Str("user", userID).Str("execution", limit(e.ID)).Msg("ledger: an execution IBKR listed is unreadable; skipped")
				continue
			}
			conf, stored, err := storeExecution(ctx, tx, userID, acct, row, now)
			if err != nil {
				return err
			}
			if stored {
				res.Stored++
			}
			if conf != "" && !seen[conf] {
				seen[conf] = true
				touched = append(touched, conf)
			}
		}
		return updateCommissions(ctx, tx, userID, touched)
	})
	if err != nil {
		return res, fmt.Errorf("import executions of %s: %w", userID, err)
	}
	if res.Recovered, err = s.recover(ctx, userID, touched); err != nil {
		return res, fmt.Errorf("import executions of %s: %w", userID, err)
	}
	if err := s.markClosed(ctx, userID); err != nil {
		return res, fmt.Errorf("import executions of %s: %w", userID, err)
	}
	return res, nil
}

// execRow is an execution checked for storing.
type execRow struct {
	id, orderID, coid, ticker, side string
	conid                           *int64
	qty, price                      string
	commission                      *string
	e                               trading.Execution
}

// decimalRE is a quantity, price or commission as IBKR sends them.
var decimalRE = regexp.MustCompile(`^[0-9]{1,12}(\.[0-9]{1,8})?$`)

// tickerRE is a US stock symbol as IBKR spells it ("BRK B" included).
var tickerRE = regexp.MustCompile(`^[A-Z0-9][A-Z0-9. /-]{0,19}$`)

// readExecution checks what IBKR sent; ok is false for an execution that
// cannot be stored (no id, no readable quantity, price or side).
func readExecution(e trading.Execution) (execRow, bool) {
	r := execRow{id: strings.TrimSpace(e.ID), orderID: strings.TrimSpace(e.OrderID), coid: strings.TrimSpace(e.COID),
		ticker: strings.ToUpper(strings.TrimSpace(e.Symbol)), side: e.Side, e: e}
	if r.id == "" || len(r.id) > 64 || len(r.orderID) > 64 || len(r.coid) > 64 || !tickerRE.MatchString(r.ticker) {
		return r, false
	}
	if r.side != "BUY" && r.side != "SELL" {
		return r, false
	}
	r.qty, r.price = strings.TrimSpace(e.Quantity), strings.TrimSpace(e.Price)
	if !positive(r.qty) || !positive(r.price) {
		return r, false
	}
	if c := strings.TrimSpace(e.Commission); c != "" {
		// IBKR reports a commission as a positive cost; some answers sign it.
		c = strings.TrimPrefix(c, "-")
		if !decimalRE.MatchString(c) {
			return r, false
		}
		r.commission = &c
	}
	if e.Conid > 0 {
		r.conid = &e.Conid
	}
	if y := e.At.UTC().Year(); e.At.IsZero() || y < 1990 || y > 9999 {
		// No time, or one no account ever traded at (or PostgreSQL cannot
		// hold).
		return r, false
	}
	return r, true
}

func positive(s string) bool {
	if !decimalRE.MatchString(s) {
		return false
	}
	r, ok := new(big.Rat).SetString(s)
	return ok && r.Sign() > 0
}

func limit(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

// storeExecution matches r to the user's confirmation of the same mode
// and side (by cOID, else by order id) and stores it once; a stored
// execution only gains what it lacked (a commission reported later, a
// match). It returns the matched confirmation's id ("" for an external
// execution) and whether the row is new.
func storeExecution(ctx context.Context, tx pgx.Tx, userID string, acct trading.Account, r execRow, now time.Time) (string, bool, error) {
	var conf *string
	var inserted bool
	err := tx.QueryRow(ctx, `
		WITH conf AS (
			SELECT id FROM confirmations
			WHERE user_id = $1 AND mode = $2 AND side = $9
			  AND (id::text = $3 OR ($4 <> '' AND broker_order_id = $4))
			ORDER BY (id::text = $3) DESC
			LIMIT 1),
		ins AS (
			INSERT INTO executions (user_id, mode, account_id_masked, broker_execution_id, broker_order_id, coid,
				confirmation_id, external, ticker, conid, side, quantity, price, commission, executed_at, imported_at)
			SELECT $1, $2, $5, $6, nullif($4, ''), nullif($3, ''), conf.id, conf.id IS NULL,
				$7, $8, $9, $10::numeric, $11::numeric, $12::numeric, $13, $14
			FROM (SELECT 1) one LEFT JOIN conf ON true
			ON CONFLICT (user_id, broker_execution_id) DO UPDATE SET
				commission = coalesce(executions.commission, EXCLUDED.commission),
				confirmation_id = coalesce(executions.confirmation_id, EXCLUDED.confirmation_id),
				external = coalesce(executions.confirmation_id, EXCLUDED.confirmation_id) IS NULL
			WHERE executions.commission IS NULL AND EXCLUDED.commission IS NOT NULL
			   OR executions.confirmation_id IS NULL AND EXCLUDED.confirmation_id IS NOT NULL
			RETURNING (xmax = 0) AS inserted)
		SELECT (SELECT id::text FROM conf), coalesce((SELECT inserted FROM ins), false)`,
		userID, string(acct.Mode), r.coid, r.orderID, acct.Masked, r.id, r.ticker, r.conid, r.side, r.qty, r.price, r.commission,
		r.e.At.UTC(), now).Scan(&conf, &inserted)
	if err != nil {
		return "", false, fmt.Errorf("store execution %s: %w", r.id, err)
	}
	if conf == nil {
		return "", inserted, nil
	}
	return *conf, inserted, nil
}

// updateCommissions sets each touched confirmation's commission to the
// sum over its executions (NULL while IBKR has reported none).
func updateCommissions(ctx context.Context, tx pgx.Tx, userID string, confirmations []string) error {
	if len(confirmations) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `
		UPDATE confirmations c SET commission = x.commission
		FROM (
			SELECT confirmation_id, sum(commission) AS commission
			FROM executions
			WHERE user_id = $1 AND confirmation_id = ANY($2::uuid[])
			GROUP BY confirmation_id) x
		WHERE c.user_id = $1 AND c.id = x.confirmation_id AND c.commission IS DISTINCT FROM x.commission`,
		userID, confirmations)
	if err != nil {
		return fmt.Errorf("update commissions: %w", err)
	}
	return nil
}

// recover hands the touched confirmations' fills, as their executions add
// them up, to the trading feature, which records those that polling
// missed.
func (s *Service) recover(ctx context.Context, userID string, confirmations []string) (int, error) {
	if len(confirmations) == 0 || s.cfg.RecordFills == nil {
		return 0, nil
	}
	rows, err := s.pool.Query(ctx, `
		SELECT confirmation_id::text, coalesce(max(broker_order_id), ''), sum(quantity)::text,
			round(sum(quantity * price) / sum(quantity), 6)::text
		FROM executions
		WHERE user_id = $1 AND confirmation_id = ANY($2::uuid[])
		GROUP BY confirmation_id`, userID, confirmations)
	if err != nil {
		return 0, fmt.Errorf("sum fills: %w", err)
	}
	fills, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (trading.Fills, error) {
		var f trading.Fills
		err := r.Scan(&f.ConfirmationID, &f.OrderID, &f.Quantity, &f.AvgPrice)
		f.Quantity, f.AvgPrice = trimZeros(f.Quantity), trimZeros(f.AvgPrice)
		return f, err
	})
	if err != nil {
		return 0, fmt.Errorf("sum fills: %w", err)
	}
	return s.cfg.RecordFills(ctx, userID, fills)
}

// trimZeros drops the trailing zeros of a numeric's text.
func trimZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// markClosed runs the user's FIFO and records which entries are closed.
func (s *Service) markClosed(ctx context.Context, userID string) error {
	fills, err := s.loadFills(ctx, userID)
	if err != nil {
		return err
	}
	_, closed := roundTrips(fills)
	ids := make([]string, 0, len(closed))
	for id := range closed {
		ids = append(ids, id)
	}
	_, err = s.pool.Exec(ctx, `
		UPDATE confirmations SET closed = (id = ANY($2::uuid[]))
		WHERE user_id = $1 AND side = 'BUY' AND closed <> (id = ANY($2::uuid[]))`, userID, ids)
	if err != nil {
		return fmt.Errorf("mark closed entries: %w", err)
	}
	return nil
}

// loadFills reads every execution of the user, oldest first, with the
// strategy of its confirmation's signal.
func (s *Service) loadFills(ctx context.Context, userID string) ([]fill, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT e.id::text, coalesce(e.confirmation_id::text, ''), e.executed_at, e.mode, e.ticker, coalesce(g.strategy, ''),
			e.side, e.quantity::text, e.price::text, coalesce(e.commission, 0)::text
		FROM executions e
		LEFT JOIN confirmations c ON c.id = e.confirmation_id AND c.user_id = e.user_id
		LEFT JOIN signals g ON g.id = c.signal_id
		WHERE e.user_id = $1
		ORDER BY e.executed_at, e.side, e.broker_execution_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("load executions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (fill, error) {
		var f fill
		var q, p, c string
		if err := r.Scan(&f.executionID, &f.confirmationID, &f.at, &f.mode, &f.ticker, &f.strategy, &f.side, &q, &p, &c); err != nil {
			return f, err
		}
		var ok1, ok2, ok3 bool
		f.qty, ok1 = new(big.Rat).SetString(q)
		f.price, ok2 = new(big.Rat).SetString(p)
		f.commission, ok3 = new(big.Rat).SetString(c)
		if !ok1 || !ok2 || !ok3 {
			return f, errors.New("unreadable numeric")
		}
		return f, nil
	})
	if err != nil {
		return nil, fmt.Errorf("load executions: %w", err)
	}
	return out, nil
}
