// Package pgtest gives each test a fresh PostgreSQL database built from the
// real migrations.
//
// One cluster serves a whole `make test` run: the Makefile starts it and
// passes its URL in ORDERTUNE_TEST_POSTGRES_URL. A `go test` run without it
// starts a throwaway cluster of its own, one per test process. Either way
// the migrated schema is built once, as a template database, and every test
// gets a clone of it, which takes milliseconds.
//
// Tests use the database as production does, with two roles: the
// migrations run as the owner (the cluster's superuser here), and DB and
// Pool connect as AppUser, a LOGIN member of the restricted ordertune_app
// group role that migration 7 creates. OwnerURL and OwnerPool reach the
// same database as the owner, for tests that play an operator or an
// attacker with the owner's rights.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/localpg"
	"github.com/ordertune/ordertune/migrations"
)

// EnvURL names the variable holding a shared test cluster's superuser URL.
const EnvURL = localpg.TestURLEnv

// AppUser is the LOGIN role tests connect as: a member of ordertune_app
// and nothing more, as deploy/README.md tells operators to set it up.
const AppUser = "ordertune_app_test"

// server is the process-wide test cluster. Tests share it by design; it is
// created once under mu and torn down by Main.
type server struct {
	mu       sync.Mutex
	base     string // superuser URL of the "postgres" database
	template string // name of the migrated template database
	cluster  *localpg.Cluster
	tmpDir   string
}

var shared server

// Main runs the package's tests and then stops a cluster this process
// started. Use it from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cluster != nil {
		shared.cluster.Stop()
		os.RemoveAll(shared.tmpDir)
		shared.cluster = nil
	}
	return code
}

// DB creates a fresh, migrated database for t, dropped when t ends, and
// returns its URL for AppUser.
func DB(t testing.TB) string {
	t.Helper()
	base, template := setup(t)
	name := "t_" + randomHex(8)
	createDB(t, base, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template), name)
	return withUser(withDB(base, name), AppUser)
}

// createDB runs create (a CREATE DATABASE name statement) on the cluster at
// base, and drops the database name when t ends.
func createDB(t testing.TB, base, create, name string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, create); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("pgtest: drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Logf("pgtest: drop %s: %v", name, err)
		}
	})
}

// Pool returns a pool, connected as AppUser, on a fresh, migrated database
// for t, closed when t ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Open(context.Background(), DB(t))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// OwnerURL returns the URL of the database at url for its owner, the
// role that ran the migrations.
func OwnerURL(url string) string {
	return withUser(url, localpg.SuperUser)
}

// OwnerPool returns a pool on pool's database connected as its owner,
// closed when t ends.
func OwnerPool(t testing.TB, pool *pgxpool.Pool) *pgxpool.Pool {
	t.Helper()
	owner, err := postgres.Open(context.Background(), OwnerURL(pool.Config().ConnString()))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(owner.Close)
	return owner
}

// OwnCluster starts a cluster of the test's own with opts (in a folder of
// t.TempDir when opts.DataDir is empty), stops it when the test ends,
// migrates its postgres database and returns the cluster and that
// database's URL, with a short connect timeout. It is for tests that stop,
// crash or restart PostgreSQL under running code; they connect as the
// superuser.
func OwnCluster(t testing.TB, opts localpg.Options) (*localpg.Cluster, string) {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = filepath.Join(t.TempDir(), "pg")
	}
	cluster, err := localpg.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cluster.Stop() })
	url := cluster.URL("postgres") + "&connect_timeout=2"
	if err := postgres.Migrate(url); err != nil {
		t.Fatal(err)
	}
	return cluster, url
}

// EmptyDB creates a fresh database with no schema at all, for migration
// tests, and returns its owner's URL.
func EmptyDB(t testing.TB) string {
	t.Helper()
	base, _ := setup(t)
	name := "e_" + randomHex(8)
	createDB(t, base, "CREATE DATABASE "+name, name)
	return withDB(base, name)
}

func setup(t testing.TB) (base, template string) {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.template != "" {
		return shared.base, shared.template
	}
	ctx := context.Background()
	shared.base = os.Getenv(EnvURL)
	if shared.base == "" {
		dir, err := os.MkdirTemp("", "ordertune-pgtest-")
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		c, err := localpg.Start(ctx, localpg.Options{DataDir: dir, Fast: true})
		if err != nil {
			os.RemoveAll(dir)
			t.Fatalf("pgtest: start PostgreSQL: %v", err)
		}
		shared.cluster, shared.tmpDir, shared.base = c, dir, c.URL("postgres")
	}
	name, err := ensureTemplate(ctx, shared.base)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	shared.template = name
	return shared.base, shared.template
}

// ensureTemplate builds the migrated template database once per cluster.
// Its name carries a hash of the migrations, so a changed migration gets a
// new template; an advisory lock keeps parallel test processes from
// building it twice.
func ensureTemplate(ctx context.Context, base string) (string, error) {
	name := "tpl_" + migrationsHash()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(727274)"); err != nil {
		return "", err
	}
	defer conn.Exec(ctx, "SELECT pg_advisory_unlock(727274)")
	var ready bool
	err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)", name).Scan(&ready)
	if err != nil {
		return "", err
	}
	if ready {
		return name, nil
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	if err := postgres.Migrate(withDB(base, name)); err != nil {
		return "", err
	}
	// The migrations created the group role; the login role joins it once
	// per cluster.
	if err := postgres.EnsureAppLogin(ctx, base, AppUser); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s WITH IS_TEMPLATE true ALLOW_CONNECTIONS false", name)); err != nil {
		return "", err
	}
	return name, nil
}

func migrationsHash() string {
	h := sha256.New()
	fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(migrations.FS, path)
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func withDB(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic("pgtest: bad base URL: " + err.Error())
	}
	u.Path = "/" + name
	return u.String()
}

func withUser(raw, user string) string {
	u, err := postgres.WithUser(raw, user)
	if err != nil {
		panic("pgtest: " + err.Error())
	}
	return u
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
