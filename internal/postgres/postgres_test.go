package postgres_test

import (
	"context"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// connect opens a connection to url for the rest of the test.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func tables(t *testing.T, url string) []string {
	t.Helper()
	ctx := context.Background()
	conn := connect(t, url)
	rows, _ := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations' ORDER BY 1`)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// migrated returns a fresh database with every migration applied, and its
// migrator.
func migrated(t *testing.T) (string, *postgres.Migrator) {
	t.Helper()
	url := pgtest.EmptyDB(t)
	m, err := postgres.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	return url, m
}

// TestMigrationsUpDownUp proves every migration has a working down and that
// applying the set again after reverting gives the same schema.
func TestMigrationsUpDownUp(t *testing.T) {
	url, m := migrated(t)
	first := tables(t, url)
	if len(first) == 0 {
		t.Fatal("no tables after migrate up")
	}
	st, err := m.State()
	if err != nil || !st.Current() || st.Version != postgres.LatestVersion() {
		t.Fatalf("after up: state %+v, err %v", st, err)
	}
	if err := m.DownAll(); err != nil {
		t.Fatal(err)
	}
	if left := tables(t, url); len(left) != 0 {
		t.Fatalf("tables left after down: %v", left)
	}
	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	if again := tables(t, url); len(again) != len(first) {
		t.Fatalf("tables after up-down-up = %v, want %v", again, first)
	}
}

func TestStateReportsDirtyAndOutdated(t *testing.T) {
	url := pgtest.EmptyDB(t)
	st, err := postgres.State(url)
	if err != nil {
		t.Fatal(err)
	}
	if st.Current() || st.Version != 0 || st.Problem() == "" {
		t.Fatalf("empty database: %+v problem %q", st, st.Problem())
	}
	if err := postgres.Migrate(url); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn := connect(t, url)
	if _, err := conn.Exec(ctx, "UPDATE schema_migrations SET dirty = true"); err != nil {
		t.Fatal(err)
	}
	st, err = postgres.State(url)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Dirty || st.Current() {
		t.Fatalf("dirty database reported as %+v", st)
	}
}

func TestOpenSizesThePool(t *testing.T) {
	t.Parallel()
	url := pgtest.DB(t)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	for _, tc := range []struct {
		name string
		url  string
		want int32
	}{
		{"no size in the URL", url, int32(max(8, 4*runtime.GOMAXPROCS(0)))},
		{"the URL's size wins", url + sep + "pool_max_conns=3", 3},
	} {
		pool, err := postgres.Open(context.Background(), tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := pool.Config().MaxConns; got != tc.want {
			t.Errorf("%s: MaxConns = %d, want %d", tc.name, got, tc.want)
		}
		pool.Close()
	}
}

// TestMigration6MakesOldPendingRowsDue: before migration 6 an abandoned
// pending row had no next_check_at and reconciliation found it by status;
// now it finds open rows only, so the migration must make such rows due.
func TestMigration6MakesOldPendingRowsDue(t *testing.T) {
	url, m := migrated(t)
	for st, _ := m.State(); st.Version > 5; st, _ = m.State() {
		if err := m.Down(); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	conn := connect(t, url)
	for _, status := range []string{"pending", "filled"} {
		if _, err := conn.Exec(ctx, `INSERT INTO confirmations (id, user_id, signal_id, side, idempotency_key, request_hash, ticker,
			quantity, order_type, tif, ref_price, mode, account_id_masked, status, created_at, updated_at)
			VALUES (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'BUY', $1, '\x00', 'AAPL', 1, 'MKT', 'OPG', 1, 'paper', 'DU…1', $1, now(), now())`,
			status); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	rows, _ := conn.Query(ctx, `SELECT status FROM confirmations WHERE open AND next_check_at <= now() ORDER BY status`)
	due, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0] != "pending" {
		t.Errorf("due after migration 6 = %v, want [pending]", due)
	}
}

// A schema newer than the binary serves it when the newer migrations say
// so (schema_compat, migration 21), as during a rolling upgrade; not when
// they ask for a newer binary, nor when the schema does not say. Both
// readers agree: the start's (State) and the readiness probe's (PoolState).
func TestNewerSchemaServesTheBinaryItsMigrationsAllow(t *testing.T) {
	url, _ := migrated(t)
	ctx := context.Background()
	conn := connect(t, url)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	latest := postgres.LatestVersion()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, current bool, problem string) {
		t.Helper()
		st, err := postgres.State(url)
		pst, perr := postgres.PoolState(ctx, pool)
		if err != nil || perr != nil {
			t.Fatalf("%s: %v, %v", what, err, perr)
		}
		if st != pst {
			t.Errorf("%s: State %+v, PoolState %+v; want the same", what, st, pst)
		}
		if st.Current() != current || !strings.Contains(st.Problem(), problem) || (current && st.Problem() != "") {
			t.Errorf("%s: %+v current=%v problem %q; want current=%v, problem containing %q", what, st, st.Current(), st.Problem(), current, problem)
		}
	}
	// The next release's migration ran; it is additive (it left oldest_binary).
	exec(`UPDATE schema_migrations SET version = $1`, latest+1)
	check("a newer additive schema", true, "")
	// It asks for binaries of its own version.
	exec(`UPDATE schema_compat SET oldest_binary = $1`, latest+1)
	check("a newer schema that needs a newer binary", false, "serves binaries of version")
	// A schema that does not say is served by its own binary only.
	exec(`DROP TABLE schema_compat`)
	check("a newer schema without schema_compat", false, "newer than this binary's")
	exec(`UPDATE schema_migrations SET version = $1`, latest)
	check("the binary's own schema", true, "")
}
