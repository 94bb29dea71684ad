package trading_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

// TestOutcomesReachOnOutcomeInTheirTransaction: the confirm's outcome and
// the fill reconciliation finds are each handed to OnOutcome inside the
// transaction that records them; a hook that fails leaves the status
// unrecorded, to be recorded (and reported) again.
func TestOutcomesReachOnOutcomeInTheirTransaction(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	fail := true
	w := newWorld(t, fastSim(), func(c *trading.Config, _ *tradetest.SimBrokerOptions) {
		c.OnOutcome = func(ctx context.Context, tx pgx.Tx, conf trading.Confirmation) error {
			var inTx string
			if err := tx.QueryRow(ctx, `SELECT status FROM confirmations WHERE id = $1`, conf.ID).Scan(&inTx); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if conf.Status == trading.StatusFilled && fail {
				fail = false
				return errors.New("queue down")
			}
			got = append(got, string(conf.Status)+"/"+inTx)
			return nil
		}
	})
	u := w.subscriber(t, trading.SizeShares, "5")
	w.filledEntry(t, u)
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"submitted/submitted", "filled/filled"}, got); diff != "" {
		t.Errorf("outcomes seen by the hook, as the transaction saw the row (-want +got):\n%s", diff)
	}
	if fail {
		t.Error("the failing hook was never called for the fill")
	}
}
