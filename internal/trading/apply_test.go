package trading

import (
	"context"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/postgres/pgtest"
)

// TestApplyAsyncCommitStaysInItsTransaction: apply turns synchronous_commit
// off for its own transaction only. Were it to leak into the pooled
// connection, the next write-ahead pending row on that connection would be
// committed without waiting for the disk.
func TestApplyAsyncCommitStaysInItsTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgtest.Pool(t).Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET synchronous_commit = on`); err != nil {
		t.Fatal(err)
	}
	const id = "0b5c2a52-1d1e-4f8e-9a43-3f0e8f6c9d11"
	now := time.Now().UTC()
	if _, err := conn.Exec(ctx, `INSERT INTO confirmations (id, user_id, signal_id, side, idempotency_key, request_hash, ticker,
		quantity, order_type, tif, ref_price, mode, account_id_masked, status, created_at, updated_at)
		VALUES ($1, gen_random_uuid(), gen_random_uuid(), 'BUY', 'k', '\x00', 'AAPL', 1, 'MKT', 'OPG', 1, 'paper', 'DU…1', 'pending', $2, $2)`,
		id, now); err != nil {
		t.Fatal(err)
	}
	c, changed, err := apply(ctx, conn, id, []string{StatusPending}, outcome{status: StatusSubmitted, brokerOrderID: "1", message: "accepted"}, now)
	if err != nil || !changed || c.Status != StatusSubmitted {
		t.Fatalf("apply = %s, %v, %v; want submitted", c.Status, changed, err)
	}
	var setting string
	if err := conn.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&setting); err != nil {
		t.Fatal(err)
	}
	if setting != "on" {
		t.Errorf("synchronous_commit after apply = %q, want on", setting)
	}
}
