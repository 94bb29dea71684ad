package main

import (
	"bytes"
	"context"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/seal"
	"github.com/ordertune/ordertune/migrations"
)

func TestMain(m *testing.M) {
	// The test binary doubles as the ordertune command, so a test can run
	// `ordertune serve` as a process of its own (and kill it).
	if os.Getenv(runAsCommand) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(pgtest.Main(m))
}

// testApp returns an app with the given environment and captured output.
func testApp(env map[string]string) (*app, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return &app{
		stdin:  strings.NewReader(""),
		stdout: &out,
		stderr: &errOut,
		getenv: func(k string) string { return env[k] },
	}, &out, &errOut
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestServeRefusesDirtySchema(t *testing.T) {
	url := pgtest.DB(t)
	conn, err := pgx.Connect(t.Context(), pgtest.OwnerURL(url))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), "UPDATE schema_migrations SET dirty = true"); err != nil {
		t.Fatal(err)
	}
	conn.Close(t.Context())

	a, _, _ := testApp(map[string]string{"DATABASE_URL": url, "ORDERTUNE_ADDR": freeAddr(t)})
	err = run(t.Context(), a, []string{"serve"})
	if err == nil || !strings.Contains(err.Error(), "dirty") {
		t.Fatalf("serve on a dirty schema: err = %v, want a refusal naming the dirty schema", err)
	}
}

func TestServeRefusesOutdatedSchemaUnlessMigrate(t *testing.T) {
	url := pgtest.EmptyDB(t)
	addr := freeAddr(t)
	a, _, _ := testApp(map[string]string{"DATABASE_URL": url, "ORDERTUNE_ADDR": addr, "ORDERTUNE_MASTER_KEYS": testMasterKey(t)})
	err := run(t.Context(), a, []string{"serve"})
	if err == nil || !strings.Contains(err.Error(), "migrate") {
		t.Fatalf("serve on an unmigrated database: err = %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, a, []string{"serve", "--migrate"}) }()
	waitHTTP(t, "http://"+addr+"/readyz", done)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve after cancel: %v", err)
	}
	st, err := postgres.State(url)
	if err != nil || !st.Current() {
		t.Fatalf("schema after serve --migrate: %+v, %v", st, err)
	}
}

// TestServeMigratesAsTheOwner runs serve --migrate the way deploy/README.md
// says: migrations as the owner (ORDERTUNE_MIGRATE_DATABASE_URL), the
// server as a member of ordertune_app, which it does not warn about; and
// `migrate` prefers the owner's URL too.
func TestServeMigratesAsTheOwner(t *testing.T) {
	owner := pgtest.EmptyDB(t)
	app, err := postgres.WithUser(owner, pgtest.AppUser)
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	key := testMasterKey(t) // one key ring for both starts: the first seals the canary
	a, _, logs := testApp(map[string]string{"DATABASE_URL": app, "ORDERTUNE_MIGRATE_DATABASE_URL": owner,
		"ORDERTUNE_ADDR": addr, "ORDERTUNE_MASTER_KEYS": key})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, a, []string{"serve", "--migrate"}) }()
	waitHTTP(t, "http://"+addr+"/readyz", done)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve after cancel: %v", err)
	}
	if strings.Contains(logs.String(), "can change or delete audit rows") {
		t.Errorf("serve warned about the restricted role:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "checkpoints are off") {
		t.Errorf("serve did not warn that audit checkpoints are off:\n%s", logs)
	}

	// As the owner, serve warns.
	addr = freeAddr(t)
	a, _, logs = testApp(map[string]string{"DATABASE_URL": owner, "ORDERTUNE_ADDR": addr, "ORDERTUNE_MASTER_KEYS": key})
	ctx, cancel = context.WithCancel(t.Context())
	go func() { done <- run(ctx, a, []string{"serve"}) }()
	waitHTTP(t, "http://"+addr+"/readyz", done)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve after cancel: %v", err)
	}
	if !strings.Contains(logs.String(), "can change or delete audit rows") {
		t.Errorf("serve as the owner did not warn:\n%s", logs)
	}

	a, out, _ := testApp(map[string]string{"DATABASE_URL": app, "ORDERTUNE_MIGRATE_DATABASE_URL": owner})
	if err := run(t.Context(), a, []string{"migrate", "down"}); err != nil {
		t.Fatalf("migrate down as the owner: %v", err)
	}
	if want := "schema version " + itoa(previousVersion(t)); !strings.Contains(out.String(), want) {
		t.Errorf("migrate down printed %q, want %q", out, want)
	}
}

func TestServeRefusesWithoutMasterKeys(t *testing.T) {
	a, _, _ := testApp(map[string]string{"DATABASE_URL": pgtest.DB(t), "ORDERTUNE_ADDR": freeAddr(t)})
	err := run(t.Context(), a, []string{"serve"})
	if err == nil || !strings.Contains(err.Error(), "ORDERTUNE_MASTER_KEYS") {
		t.Fatalf("serve without a key ring: err = %v, want a refusal naming ORDERTUNE_MASTER_KEYS", err)
	}
}

// TestServeRefusesWrongMasterKey: a server started once seals the key
// ring canary; started again with another key under the same id, it
// refuses with a message naming the key the database needs.
func TestServeRefusesWrongMasterKey(t *testing.T) {
	url, addr := pgtest.DB(t), freeAddr(t)
	a, _, _ := testApp(map[string]string{"DATABASE_URL": url, "ORDERTUNE_ADDR": addr, "ORDERTUNE_MASTER_KEYS": testMasterKey(t)})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, a, []string{"serve"}) }()
	waitHTTP(t, "http://"+addr+"/readyz", done)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("first serve: %v", err)
	}

	wrong, _, _ := testApp(map[string]string{"DATABASE_URL": url, "ORDERTUNE_ADDR": freeAddr(t), "ORDERTUNE_MASTER_KEYS": testMasterKey(t)})
	err := run(t.Context(), wrong, []string{"serve"})
	if err == nil || !strings.Contains(err.Error(), "refusing to start") || !strings.Contains(err.Error(), `sealed with key "t1"`) {
		t.Fatalf("serve with the wrong key: err = %v, want a refusal naming key t1", err)
	}
}

func TestServeRefusesABadAuditSigningKey(t *testing.T) {
	a, _, _ := testApp(map[string]string{"DATABASE_URL": pgtest.DB(t), "ORDERTUNE_ADDR": freeAddr(t),
		"ORDERTUNE_MASTER_KEYS": testMasterKey(t), "ORDERTUNE_AUDIT_SIGNING_KEY": "not-a-key"})
	err := run(t.Context(), a, []string{"serve"})
	if err == nil || !strings.Contains(err.Error(), "ORDERTUNE_AUDIT_SIGNING_KEY") || strings.Contains(err.Error(), "not-a-key") {
		t.Fatalf("serve with a bad audit signing key: err = %v, want a refusal naming the variable, not its value", err)
	}
}

func testMasterKey(t testing.TB) string {
	t.Helper()
	k, err := seal.GenerateKey("t1")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestMigrateCommand(t *testing.T) {
	url := pgtest.EmptyDB(t)
	a, out, _ := testApp(map[string]string{"DATABASE_URL": url})
	for _, step := range []struct{ args, want string }{
		{"version", "schema version 0"},
		{"up", "schema version " + itoa(postgres.LatestVersion())},
		{"down", "schema version " + itoa(previousVersion(t))},
	} {
		out.Reset()
		if err := run(t.Context(), a, []string{"migrate", step.args}); err != nil {
			t.Fatalf("migrate %s: %v", step.args, err)
		}
		if !strings.Contains(out.String(), step.want) {
			t.Errorf("migrate %s printed %q, want %q", step.args, out, step.want)
		}
	}
	if err := run(t.Context(), a, []string{"migrate", "sideways"}); err == nil {
		t.Error("migrate sideways: want an error")
	}
}

func TestUnknownCommand(t *testing.T) {
	a, _, errOut := testApp(nil)
	if err := run(t.Context(), a, []string{"frobnicate"}); err == nil {
		t.Fatal("want an error")
	}
	if !strings.Contains(errOut.String(), "usage: ordertune") {
		t.Errorf("no usage printed: %s", errOut)
	}
}

func itoa(v uint) string { return strconv.FormatUint(uint64(v), 10) }

// previousVersion returns the embedded migration version before the
// latest one: what one step down reaches (numbers may have gaps while
// branches that each add a migration are merged).
func previousVersion(t *testing.T) uint {
	t.Helper()
	entries, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	var prev uint
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseUint(num, 10, 32)
		if err == nil && uint(v) < postgres.LatestVersion() && uint(v) > prev {
			prev = uint(v)
		}
	}
	return prev
}

// waitHTTP polls url until it answers 200, failing if the server exits. Its
// two minutes bound a hang, not a speed: a loaded 2-core machine has taken
// more than 30 s to migrate, seed and start a demo.
func waitHTTP(t *testing.T, url string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("server exited early: %v", err)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}
