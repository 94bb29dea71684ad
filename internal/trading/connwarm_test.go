package trading_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

// TestWarmLockConnRunsEveryStatementOfAnOrder: a lock connection readied
// by WarmLockConn, as serve readies each of its lock pool's, then places
// an order (with its notification, as serve tells it) without preparing a
// statement of its own: the warm-up ran the very statements the order
// runs. And the warm-up wrote nothing.
func TestWarmLockConnRunsEveryStatementOfAnOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var locks *pgxpool.Pool
	var warmed int
	w := newWorld(t, fastSim(), func(c *trading.Config, _ *tradetest.SimBrokerOptions) {
		n := newNotifier(t, c.Pool)
		c.OutcomeEvent = n.event
		cfg := c.Pool.Config()
		cfg.MinConns, cfg.MaxConns = 0, 1 // one connection: the warm-up's is the order's
		cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
			warmed++
			return trading.WarmLockConn(ctx, conn, n.event)
		}
		var err error
		if locks, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(locks.Close)
		c.LockPool = locks
	})
	u := w.subscriber(t, trading.SizeShares, "1")
	g := w.signal(t, nil)
	rows := func() int {
		return w.count(t, `SELECT (SELECT count(*) FROM confirmations) + (SELECT count(*) FROM confirmation_events)
			+ (SELECT count(*) FROM audit_events) + (SELECT count(*) FROM notification_events) + (SELECT count(*) FROM notification_outbox)`)
	}
	before := rows()
	statements := func() int {
		conn, err := locks.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		// The server's own list, read without preparing anything.
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_prepared_statements`, pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	prepared := statements()
	if warmed != 1 || prepared == 0 {
		t.Fatalf("after the lock pool's first connection: %d warm-ups, %d statements prepared", warmed, prepared)
	}
	if after := rows(); after != before {
		t.Fatalf("the warm-up wrote %d rows", after-before)
	}
	c, _, err := w.svc.Confirm(ctx, u, g.ID, "after-warm-up", trading.Buy)
	if err != nil || c.Status != trading.StatusSubmitted {
		t.Fatalf("confirm = (%s, %v), want submitted", c.Status, err)
	}
	if got := statements(); got != prepared || warmed != 1 {
		t.Errorf("the order prepared %d statements the warm-up had not run (%d warm-ups)", got-prepared, warmed)
	}
}

// A warm-up that fails after taking its lock releases it: the connection
// stays in the pool (a cold connection is only slower), and a lock on its
// session would be held for as long as the connection lives.
func TestWarmLockConnFailingHalfwayHoldsNoLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// The outcome's statement fails as it runs, after the lock and the
	// write-ahead statement have run (a data-modifying CTE always runs).
	broken := func(trading.Confirmation, string, int) (trading.EventSQL, error) {
		return trading.EventSQL{CTEs: "broken AS (INSERT INTO audit_events (action) SELECT 'never' WHERE 1 / (SELECT 0) = 1)"}, nil
	}
	if err := trading.WarmLockConn(ctx, conn.Conn(), broken); err == nil || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("warm-up with a failing outcome statement: %v, want division by zero", err)
	}
	var held int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()`).Scan(&held); err != nil {
		t.Fatal(err)
	}
	if held != 0 {
		t.Errorf("the failed warm-up left %d advisory locks held by its connection", held)
	}
}
