package trading

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordertune/ordertune/internal/postgres/pgtest"
)

// statementRunner runs a statement: a pooled connection and a transaction
// both do.
type statementRunner interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}

// insertPending inserts a pending BUY of one AAPL share as confirmation id,
// created at now and due at nextCheck (nil: not due).
func insertPending(t *testing.T, db statementRunner, id string, now time.Time, nextCheck *time.Time) {
	t.Helper()
	if _, err := db.Exec(context.Background(), `INSERT INTO confirmations (id, user_id, signal_id, side, idempotency_key, request_hash, ticker,
		quantity, order_type, tif, ref_price, mode, account_id_masked, status, created_at, updated_at, next_check_at)
		VALUES ($1, gen_random_uuid(), gen_random_uuid(), 'BUY', 'k', '\x00', 'AAPL', 1, 'MKT', 'OPG', 1, 'paper', 'DU…1', 'pending', $2, $2, $3)`,
		id, now, nextCheck); err != nil {
		t.Fatal(err)
	}
}

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
	insertPending(t, conn, id, now, nil)
	c, changed, err := apply(ctx, conn, id, []Status{StatusPending}, outcome{status: StatusSubmitted, brokerOrderID: "1", message: "accepted"}, now)
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

// TestCommonUpdatesWriteNoIndexEntries: the updates a confirmation sees on
// its common path — its outcome (pending → submitted) and reconciliation's
// leases and re-checks — change no indexed column, so PostgreSQL makes them
// heap-only (HOT) and writes no index entry. An index on status or
// next_check_at (as before migration 6) makes them ordinary updates that
// insert into every index.
func TestCommonUpdatesWriteNoIndexEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tx, err := pgtest.Pool(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	const id = "5d0f6b8e-7a51-4c1e-8f0c-2b7e3c9a1d42"
	now := time.Now().UTC()
	due := now.Add(time.Minute)
	insertPending(t, tx, id, now, &due)
	c, changed, err := apply(ctx, tx, id, []Status{StatusPending}, outcome{status: StatusSubmitted, conid: 265598, brokerOrderID: "1",
		brokerStatus: "PreSubmitted", message: "accepted", nextCheck: now.Add(5 * time.Second)}, now)
	if err != nil || !changed || c.Status != StatusSubmitted {
		t.Fatalf("apply = %s, %v, %v; want submitted", c.Status, changed, err)
	}
	for _, q := range []string{ // what claim and settle do to an open order
		`UPDATE confirmations SET next_check_at = now() + interval '1 minute' WHERE id = $1`,
		`UPDATE confirmations SET next_check_at = now() + interval '5 seconds', misses = 0 WHERE id = $1`,
	} {
		if _, err := tx.Exec(ctx, q, id); err != nil {
			t.Fatal(err)
		}
	}
	var updated, hot int64
	if err := tx.QueryRow(ctx, `SELECT pg_stat_get_xact_tuples_updated('confirmations'::regclass),
		pg_stat_get_xact_tuples_hot_updated('confirmations'::regclass)`).Scan(&updated, &hot); err != nil {
		t.Fatal(err)
	}
	if updated != 3 || hot != 3 {
		t.Errorf("%d of %d updates were HOT; want 3 of 3", hot, updated)
	}
}
