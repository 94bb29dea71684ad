// Package postgres owns Ordertune's PostgreSQL access: the connection pool,
// the embedded migrations and the schema check that guards start-up.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ordertune/ordertune/migrations"
)

// minPoolConns is the pool size when DATABASE_URL sets none. pgx's own
// default (4, or the number of CPUs) queues a burst of confirms — everyone
// pressing Confirm when a signal is published — behind a handful of
// connections while the reconciler and the audit sealer want theirs too.
const minPoolConns = 8

// Open connects a pool to url and checks that the database answers. The
// pool holds pool_max_conns connections when url says so, else the larger
// of 8 and four per CPU.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("parse DATABASE_URL: invalid connection string")
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = int32(max(minPoolConns, 4*runtime.GOMAXPROCS(0)))
	}
	cfg.MaxConnIdleTime = 5 * time.Minute
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return pool, nil
}

// SchemaState is the migration state of a database.
type SchemaState struct {
	Version uint // applied version; 0 when none
	Dirty   bool // a migration failed half-way and needs an operator
	Latest  uint // the newest version this binary carries
	// Oldest is the oldest binary version a schema newer than this binary
	// serves (migration 21's schema_compat); 0 when the schema is not newer
	// or does not say.
	Oldest uint
}

// Current reports whether this binary may serve the schema: it is exactly
// the one the binary carries, or newer and made by migrations that keep
// this binary working (Oldest), as during a rolling upgrade.
func (s SchemaState) Current() bool {
	return !s.Dirty && (s.Version == s.Latest || s.servesOlder())
}

// servesOlder reports whether a newer schema still serves this binary.
func (s SchemaState) servesOlder() bool {
	return s.Version > s.Latest && s.Oldest != 0 && s.Oldest <= s.Latest
}

// Problem describes what is wrong with the schema, or "" when it is current.
func (s SchemaState) Problem() string {
	switch {
	case s.Dirty:
		return fmt.Sprintf("the schema is dirty at version %d (a migration failed half-way); repair it, then run `ordertune migrate up`", s.Version)
	case s.Version < s.Latest:
		return fmt.Sprintf("the schema is at version %d, this binary needs %d; run `ordertune migrate up` or start with --migrate", s.Version, s.Latest)
	case s.Version > s.Latest && s.Oldest > s.Latest:
		return fmt.Sprintf("the schema is at version %d, newer than this binary's %d, and serves binaries of version %d or later; run the newer binary", s.Version, s.Latest, s.Oldest)
	case s.Version > s.Latest && s.Oldest == 0:
		return fmt.Sprintf("the schema is at version %d, newer than this binary's %d; run the newer binary", s.Version, s.Latest)
	}
	return ""
}

// LatestVersion returns the newest migration version embedded in the binary.
func LatestVersion() uint {
	var latest uint
	entries, _ := fs.ReadDir(migrations.FS, ".")
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if !ok {
			continue
		}
		if v, err := strconv.ParseUint(num, 10, 32); err == nil && uint(v) > latest {
			latest = uint(v)
		}
	}
	return latest
}

// Migrator applies the embedded migrations to one database.
type Migrator struct {
	m  *migrate.Migrate
	db *sql.DB
}

// NewMigrator prepares migrations for the database at url. Close it after use.
func NewMigrator(url string) (*Migrator, error) {
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("parse DATABASE_URL: invalid connection string")
	}
	db := stdlib.OpenDB(*cfg.ConnConfig)
	drv, err := migratepgx.WithInstance(db, &migratepgx.Config{})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("prepare migrations: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("prepare migrations: %w", err)
	}
	return &Migrator{m: m, db: db}, nil
}

// Up applies every pending migration.
func (m *Migrator) Up() error {
	if err := m.m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// Down reverts the newest applied migration only; reverting everything at
// once is too easy a way to lose a database.
func (m *Migrator) Down() error {
	if err := m.m.Steps(-1); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// DownAll reverts every migration (tests use it to prove each down works).
func (m *Migrator) DownAll() error {
	if err := m.m.Down(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// State returns the database's migration state.
func (m *Migrator) State() (SchemaState, error) {
	st := SchemaState{Latest: LatestVersion()}
	v, dirty, err := m.m.Version()
	switch {
	case errors.Is(err, migrate.ErrNilVersion):
		return st, nil
	case err != nil:
		return st, fmt.Errorf("read schema version: %w", err)
	}
	st.Version, st.Dirty = v, dirty
	if st.Version > st.Latest {
		var oldest int64
		err := m.db.QueryRow(`SELECT oldest_binary FROM schema_compat`).Scan(&oldest)
		if st.Oldest, err = oldestOf(oldest, err); err != nil {
			return st, err
		}
	}
	return st, nil
}

// oldestOf is SchemaState.Oldest from a read of schema_compat: a schema
// without the table (or its row) does not say.
func oldestOf(v int64, err error) (uint, error) {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, sql.ErrNoRows), errors.Is(err, pgx.ErrNoRows),
		errors.As(err, &pgErr) && pgErr.Code == "42P01": // undefined_table: before migration 21
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read schema compatibility: %w", err)
	case v <= 0:
		return 0, nil
	}
	return uint(v), nil
}

// Close releases the migrator's connection.
func (m *Migrator) Close() error {
	srcErr, dbErr := m.m.Close()
	return errors.Join(srcErr, dbErr, m.db.Close())
}

// Migrate applies every pending migration to the database at url.
func Migrate(url string) error {
	m, err := NewMigrator(url)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Up()
}

// State returns the migration state of the database at url.
func State(url string) (SchemaState, error) {
	m, err := NewMigrator(url)
	if err != nil {
		return SchemaState{}, err
	}
	defer m.Close()
	return m.State()
}

// PoolState reads the migration state through an open pool, cheaply enough
// for a readiness probe.
func PoolState(ctx context.Context, pool *pgxpool.Pool) (SchemaState, error) {
	st := SchemaState{Latest: LatestVersion()}
	var v int64
	err := pool.QueryRow(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&v, &st.Dirty)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table: never migrated
			return st, nil
		}
		return st, fmt.Errorf("read schema version: %w", err)
	}
	st.Version = uint(v)
	if st.Version > st.Latest {
		var oldest int64
		err := pool.QueryRow(ctx, `SELECT oldest_binary FROM schema_compat`).Scan(&oldest)
		if st.Oldest, err = oldestOf(oldest, err); err != nil {
			return st, err
		}
	}
	return st, nil
}
