package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/config"
	"github.com/ordertune/ordertune/internal/seal"
)

// configSubset is what the compose checks need of a loaded configuration.
type configSubset struct {
	addr, publicURL string
	shutdown        time.Duration
}

// loadConfig loads env with internal/config, as the service would.
func loadConfig(env map[string]string) (configSubset, error) {
	c, err := config.Load(func(n string) string { return env[n] }, false)
	return configSubset{addr: c.Addr, publicURL: c.PublicURL, shutdown: c.ShutdownPeriod}, err
}

func execShell(ctx context.Context, script string) *exec.Cmd {
	return exec.CommandContext(ctx, "/bin/sh", script)
}

// fileOwner reports the owner and permission bits of path.
func fileOwner(path string) (uid int, mode os.FileMode, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return -1, 0, err
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid), fi.Mode().Perm(), nil
}

// TestComposeSecretsScript runs deploy/compose-secrets.sh as the trial's
// first `docker compose up` would, then again, then with a file missing.
func TestComposeSecretsScript(t *testing.T) {
	f := readTrial(t)
	in := exampleSecrets(t)
	first := runSecrets(t, f.script, in)
	if first.err != nil {
		t.Fatalf("first run: %v\n%s", first.err, first.output)
	}
	keys, err := os.ReadFile(filepath.Join(in, "master_keys"))
	if err != nil {
		t.Fatalf("the first run left no deploy/secrets/master_keys: %v", err)
	}
	if _, err := seal.ParseRing(strings.TrimSpace(string(keys))); err != nil {
		t.Errorf("generated master_keys: %v", err)
	}
	if strings.Contains(first.output, strings.TrimSpace(string(keys))) {
		t.Error("the script printed the master key")
	}
	// deploy/secrets/master_keys belongs to whoever owns the directory.
	dirUID, _, _ := fileOwner(in)
	if uid, mode, err := fileOwner(filepath.Join(in, "master_keys")); err != nil || uid != dirUID || mode != 0o600 {
		t.Errorf("deploy/secrets/master_keys: uid %d mode %o (%v), want the directory's owner %d, mode 600", uid, mode, err, dirUID)
	}

	second := runSecrets(t, f.script, in)
	if second.err != nil {
		t.Fatalf("second run: %v\n%s", second.err, second.output)
	}
	again, _ := os.ReadFile(filepath.Join(in, "master_keys"))
	copied, _ := os.ReadFile(filepath.Join(second.out, "ordertune", "master_keys"))
	if string(again) != string(keys) || string(copied) != string(keys) {
		t.Error("a second run replaced the master key: the database's secrets would no longer open")
	}
	for _, f := range []struct {
		path string
		uid  int
	}{
		{"ordertune/database_url", second.ordertune}, {"ordertune/migrate_database_url", second.ordertune},
		{"ordertune/master_keys", second.ordertune}, {"ordertune/admin_password", second.ordertune},
		{"postgres/postgres_password", second.pgUID}, {"postgres/server_db_password", second.pgUID},
	} {
		if uid, mode, err := fileOwner(filepath.Join(second.out, f.path)); err != nil || uid != f.uid || mode != 0o400 {
			t.Errorf("%s: uid %d mode %o (%v), want uid %d mode 400", f.path, uid, mode, err, f.uid)
		}
	}

	if err := os.Remove(filepath.Join(in, "admin_password")); err != nil {
		t.Fatal(err)
	}
	missing := runSecrets(t, f.script, in)
	if missing.err == nil || !strings.Contains(missing.output, "admin_password") {
		t.Errorf("without admin_password: err %v, output %q; want a failure naming the file", missing.err, missing.output)
	}
}
