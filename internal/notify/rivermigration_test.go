package notify_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
)

var update = flag.Bool("update", false, "rewrite migrations/000012_river.*.sql from the pinned river module")

// riverMigrationFiles are our golang-migrate files that create river's tables.
const (
	riverUpFile   = "../../migrations/000012_river.up.sql"
	riverDownFile = "../../migrations/000012_river.down.sql"
)

// riverMigrationSQL renders river's main migration line, as the pinned
// module embeds it, into one up and one down file. The up file ends by
// recording every version in river_migration, as river's own migrator
// would, so river sees nothing pending.
func riverMigrationSQL(t *testing.T) (up, down string) {
	t.Helper()
	m, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	versions := m.AllVersions()
	const header = "-- Generated from river's main migration line by\n" +
		"-- `go test ./internal/notify/ -run TestRiverMigrationGenerated -update`; do not edit.\n" +
		"-- A test checks it against the river module in go.mod, and the schema it makes\n" +
		"-- against the one river's own migrator makes. One change to river's SQL: the job\n" +
		"-- state 'pending' is declared with its type (see declarePending in that test).\n\n"
	var u, d strings.Builder
	u.WriteString(header)
	d.WriteString(header)
	var recorded []string
	for _, v := range versions {
		if v.Version == 2 {
			v.SQLUp = declarePending(t, v.SQLUp)
		}
		fmt.Fprintf(&u, "-- river version %d: %s\n%s\n\n", v.Version, v.Name, strings.TrimSpace(untemplate(v.SQLUp)))
		recorded = append(recorded, fmt.Sprintf("('main', %d)", v.Version))
	}
	fmt.Fprintf(&u, "INSERT INTO river_migration (line, version) VALUES %s;\n", strings.Join(recorded, ", "))
	slices.Reverse(versions)
	for _, v := range versions {
		fmt.Fprintf(&d, "-- river version %d: %s\n%s\n\n", v.Version, v.Name, strings.TrimSpace(untemplate(v.SQLDown)))
	}
	return u.String(), strings.TrimRight(d.String(), "\n") + "\n"
}

// declarePending makes one change to river's SQL: the job state enum is
// created with 'pending' already in place. River's version 4 adds it with
// ALTER TYPE ... ADD VALUE IF NOT EXISTS (then a no-op), and PostgreSQL
// refuses to use a value added that way in the same transaction, while
// golang-migrate runs a whole file in one.
func declarePending(t *testing.T, sql string) string {
	t.Helper()
	const from = "  'discarded',\n  'retryable',"
	if strings.Count(sql, from) != 1 {
		t.Fatalf("river's version 2 no longer declares the job states as expected; adapt declarePending:\n%s", sql)
	}
	return strings.Replace(sql, from, "  'discarded',\n  'pending', -- added by river's version 4; declared here, see the header\n  'retryable',", 1)
}

// untemplate drops river's schema placeholder: our tables live in the
// search path's schema, like river's with no schema configured.
func untemplate(sql string) string { return strings.ReplaceAll(sql, "/* TEMPLATE: schema */", "") }

// TestRiverMigrationGenerated fails when migration 000012 is not what the
// pinned river module says: after upgrading river, run it with -update and
// add a new migration for the difference instead of editing 000012.
func TestRiverMigrationGenerated(t *testing.T) {
	up, down := riverMigrationSQL(t)
	if *update {
		for path, body := range map[string]string{riverUpFile: up, riverDownFile: down} {
			if err := os.WriteFile(filepath.FromSlash(path), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for path, want := range map[string]string{riverUpFile: up, riverDownFile: down} {
		got, err := os.ReadFile(filepath.FromSlash(path))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, string(got)); diff != "" {
			t.Errorf("%s is not river's migration line (-river +file); regenerate with -update:\n%s", path, diff)
		}
	}
}

// TestRiverSchemaMatchesRiver checks a database built only by our
// migrations against one built by river's own migrator: river reports no
// pending migration, and river's tables, columns, indexes and constraints
// are the same.
func TestRiverSchemaMatchesRiver(t *testing.T) {
	ctx := context.Background()
	ours := pgtest.Pool(t)
	m, err := rivermigrate.New(riverpgxv5.New(ours), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Validate(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK {
		t.Errorf("river validates our schema: %v", res.Messages)
	}

	theirs, err := postgres.Open(ctx, pgtest.EmptyDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(theirs.Close)
	rm, err := rivermigrate.New(riverpgxv5.New(theirs), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(riverCatalog(t, theirs), riverCatalog(t, ours)); diff != "" {
		t.Errorf("river's schema differs (-river's migrator +our migrations):\n%s", diff)
	}
}

// riverCatalog lists river's objects in a comparable form.
func riverCatalog(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	const q = `
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || udt_name || ' null=' || is_nullable || ' default=' || coalesce(column_default, '')
  FROM information_schema.columns WHERE table_schema = current_schema() AND table_name LIKE 'river%'
UNION ALL
SELECT 'index ' || tablename || ' ' || indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename LIKE 'river%'
UNION ALL
SELECT 'constraint ' || c.conrelid::regclass::text || ' ' || c.conname || ' ' || pg_get_constraintdef(c.oid)
  FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
 WHERE n.nspname = current_schema() AND c.conrelid::regclass::text LIKE 'river%'
UNION ALL
SELECT 'type ' || t.typname || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
  FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname = current_schema() AND t.typname LIKE 'river%' GROUP BY t.typname
UNION ALL
SELECT 'function ' || p.proname || ' ' || md5(p.prosrc)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = current_schema() AND p.proname LIKE 'river%'
UNION ALL
SELECT 'migration ' || line || ' ' || version FROM river_migration
ORDER BY 1`
	rows, _ := pool.Query(context.Background(), q)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 20 {
		t.Fatalf("river catalog has only %d entries: %v", len(got), got)
	}
	return got
}
