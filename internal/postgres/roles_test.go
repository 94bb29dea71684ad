package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
)

// TestAppendOnlyTables tampers with every append-only table, once as the
// server's role (a member of ordertune_app) and once as the owner: the
// server's role lacks the privilege or meets the trigger, and the
// triggers hold for the owner too. What the server must do still works.
func TestAppendOnlyTables(t *testing.T) {
	ctx := context.Background()
	url := pgtest.DB(t)
	owner := connect(t, pgtest.OwnerURL(url))
	app := connect(t, url)
	_, err := owner.Exec(ctx, `
		INSERT INTO users (id, email, role, password_hash, created_at, updated_at)
			VALUES ('00000000-0000-0000-0000-000000000001', 'a@example.com', 'subscriber', 'x', now(), now());
		INSERT INTO signals (id, ticker, strategy, kind, signal_date, entry_date, ref_close, rsi2, return_2d, entry_mode, expires_at, created_at)
			VALUES ('00000000-0000-0000-0000-000000000002', 'AAPL', 'I', 'entry', '2026-12-01', '2026-12-02', 100, 5, -0.02, 'next_open_market', now(), now());
		INSERT INTO confirmations (id, user_id, signal_id, side, idempotency_key, request_hash, ticker, quantity, order_type, tif,
				ref_price, mode, account_id_masked, status, created_at, updated_at)
			VALUES ('00000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000002',
				'BUY', 'k', '\x00', 'AAPL', 1, 'MKT', 'OPG', 100, 'paper', 'DU•••0001', 'pending', now(), now());
		INSERT INTO confirmation_events (confirmation_id, at, status) VALUES ('00000000-0000-0000-0000-000000000003', now(), 'pending');
		INSERT INTO audit_events (action) VALUES ('sealed'), ('unsealed');
		UPDATE audit_events SET seq = 1, prev_hash = '\x00', hash = '\x01' WHERE action = 'sealed';
		INSERT INTO audit_chain_head (seq, hash) VALUES (1, '\x01')`)
	if err != nil {
		t.Fatal(err)
	}

	const (
		ok         = ""
		denied     = "42501" // insufficient_privilege
		restricted = "23001" // restrict_violation: a trigger
	)
	tests := []struct {
		sql          string
		app, asOwner string // the SQLSTATE expected
	}{
		{`INSERT INTO audit_events (action) VALUES ('x')`, ok, ok},
		{`UPDATE audit_events SET seq = 2, prev_hash = '\x01', hash = '\x02' WHERE action = 'unsealed'`, ok, ok},
		{`UPDATE audit_events SET hash = '\x02' WHERE action = 'unsealed'`, restricted, restricted},
		{`UPDATE audit_events SET seq = 2, prev_hash = '\x01', hash = '\x02', subject = 'x' WHERE action = 'unsealed'`, denied, restricted},
		{`UPDATE audit_events SET details = '{"x": 1}' WHERE action = 'sealed'`, denied, restricted},
		{`UPDATE audit_events SET seq = 5, hash = '\x05' WHERE action = 'sealed'`, restricted, restricted},
		{`UPDATE audit_events SET seq = NULL, prev_hash = NULL, hash = NULL WHERE action = 'sealed'`, restricted, restricted},
		{`DELETE FROM audit_events WHERE action = 'sealed'`, denied, restricted},
		{`DELETE FROM audit_events WHERE action = 'unsealed'`, denied, restricted},
		{`TRUNCATE audit_events`, denied, restricted},
		{`UPDATE audit_chain_head SET seq = 2, hash = '\x02'`, ok, ok},
		{`UPDATE audit_chain_head SET seq = 0, hash = '\x00'`, restricted, restricted},
		{`UPDATE audit_chain_head SET hash = '\x00'`, restricted, restricted},
		{`DELETE FROM audit_chain_head`, denied, restricted},
		{`TRUNCATE audit_chain_head`, denied, restricted},
		{`INSERT INTO confirmation_events (confirmation_id, at, status) VALUES ('00000000-0000-0000-0000-000000000003', now(), 'failed')`, ok, ok},
		{`UPDATE confirmation_events SET message = 'x'`, denied, restricted},
		{`DELETE FROM confirmation_events`, denied, restricted},
		{`TRUNCATE confirmation_events`, denied, restricted},
		{`UPDATE confirmations SET status = 'failed'`, ok, ok},
		{`DELETE FROM confirmations`, denied, restricted},
		// CASCADE: the ledger's executions refer to confirmations, and a
		// plain TRUNCATE would stop at that reference before the trigger.
		{`TRUNCATE confirmations CASCADE`, denied, restricted},
		{`UPDATE signals SET withdrawn_at = now()`, ok, ok},
		{`DELETE FROM signals`, denied, restricted},
		{`TRUNCATE signals`, denied, restricted},
		// The server cannot switch the triggers off or become another role.
		{`ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only`, denied, ok},
		{`DROP TRIGGER audit_events_never_truncated ON audit_events`, denied, ok},
		{`SET session_replication_role = replica`, denied, ok},
		{`SET ROLE postgres`, denied, ok},
		{`ALTER TABLE audit_events OWNER TO ` + pgtest.AppUser, denied, ok},
	}
	for _, tt := range tests {
		for _, as := range []struct {
			name string
			conn *pgx.Conn
			want string
		}{{"app", app, tt.app}, {"owner", owner, tt.asOwner}} {
			got := run(ctx, t, as.conn, tt.sql)
			if got != as.want {
				t.Errorf("as %s: %s: SQLSTATE %q, want %q", as.name, tt.sql, got, as.want)
			}
		}
	}
}

// run executes sql in a transaction it rolls back and returns the
// SQLSTATE it failed with, or "".
func run(ctx context.Context, t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, sql)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &pgErr):
		return pgErr.Code
	}
	t.Fatalf("%s: %v", sql, err)
	return ""
}

// TestCanEraseAudit tells the server's role from the owner's, which serve
// warns about.
func TestCanEraseAudit(t *testing.T) {
	ctx := context.Background()
	url := pgtest.DB(t)
	for _, tc := range []struct {
		url  string
		want bool
	}{{url, false}, {pgtest.OwnerURL(url), true}} {
		pool, err := postgres.Open(ctx, tc.url)
		if err != nil {
			t.Fatal(err)
		}
		got, err := postgres.CanEraseAudit(ctx, pool)
		pool.Close()
		if err != nil || got != tc.want {
			t.Errorf("CanEraseAudit as %s = %v, %v; want %v", tc.url, got, err, tc.want)
		}
	}
}
