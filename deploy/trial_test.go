package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// TestComposeChecksCatchMistakes breaks the trial's files one way at a time
// and expects the checks to name each mistake.
func TestComposeChecksCatchMistakes(t *testing.T) {
	orig := readTrial(t)
	tests := []struct {
		file     string // compose, nginx or script
		old, new string
		want     string
	}{
		{"compose", "    command: [\"serve\"]", "    container_name: ordertune\n    command: [\"serve\"]", "container_name"},
		{"compose", "    command: [\"serve\"]", "    ports: [\"127.0.0.1:8080:8080\"]\n    command: [\"serve\"]", "host port"},
		{"compose", "stop_grace_period: 30s", "stop_grace_period: 10s", "stop_grace_period"},
		{"compose", "      ORDERTUNE_ADDR: 0.0.0.0:8080", "      ORDERTUNE_ADDR: 0.0.0.0:8080\n      ORDERTUNE_INTERNAL_URL: http://ordertune:8080", "ORDERTUNE_INTERNAL_URL is the same"},
		{"compose", "ORDERTUNE_ADDR: 0.0.0.0:8080", "ORDERTUNE_ADDR: 127.0.0.1:8080", "listen on 0.0.0.0"},
		{"compose", "ORDERTUNE_SHUTDOWN_TIMEOUT: 15s", "ORDERTUNE_SHUTDOWN_TIMEOUT: 15", "ORDERTUNE_SHUTDOWN_TIMEOUT"},
		{"compose", "ORDERTUNE_MASTER_KEYS_FILE:", "ORDERTUNE_MASTERKEYS_FILE:", "ORDERTUNE_MASTERKEYS_FILE is not read"},
		{"compose", `"--addr", "0.0.0.0:5005"`, `"--addr", "127.0.0.1:5005"`, "listen on 0.0.0.0"},
		{"compose", `ports: ["127.0.0.1:5005:5005"]`, `ports: ["127.0.0.1:5006:5005"]`, "sim register --sim http://127.0.0.1:5006"},
		{"compose", `user: "0:0"`, `user: "65532"`, "root"},
		{"compose", `"--password-file", "/run`, `"--password-fil", "/run`, "flag provided but not defined"},
		{"compose", `command: ["migrate", "up"]`, `command: ["migrate", "upp"]`, "must run `ordertune migrate up`"},
		{"compose", `command: ["serve"]`, `command: ["server"]`, "unknown command"},
		{"compose", "    command: [\"serve\"]", "    user: \"0\"\n    command: [\"serve\"]", "the image's nonroot user"},
		{"compose", "      migrate: { condition: service_completed_successfully }\n      sim:", "      migrate: { condition: service_started }\n      sim:", "wait for migrate"},
		{"compose", "    depends_on:\n      secrets: { condition: service_completed_successfully }\n      postgres:", "    depends_on:\n      postgres:", "migrate: reads trial-secrets"},
		{"compose", "image: nginx:1.28", "image: nginx:1.25", "1.27.3"},
		{"compose", `ports: ["127.0.0.1:8080:80"]`, `ports: ["127.0.0.1:8081:80"]`, "ORDERTUNE_PUBLIC_URL's port"},
		{"compose", "POSTGRES_DB: ordertune", "POSTGRES_DB: trial", "postgres/trial"},
		{"compose", "      - trial-secrets:/out", "      - trial-secrets:/output", "at /out"},
		{"nginx", "server ordertune:8080 resolve", "server ordertune:8080", "resolve"},
		{"nginx", "server ordertune:8080 resolve", "server ordertune:8081 resolve", "resolve"},
		{"nginx", "resolver 127.0.0.11", "resolver 8.8.8.8", "127.0.0.11"},
		{"script", `chown "$owner:$owner" "$dir/$f.tmp"`, `: no chown`, "readable by the service's user"},
		{"script", "chmod 0400", "chmod 0444", "mode 400"},
		{"script", "head -c 32", "head -c 16", "does not open"},
	}
	for _, tt := range tests {
		f := orig
		target := map[string]*[]byte{"compose": &f.compose, "nginx": &f.nginx, "script": &f.script}[tt.file]
		if !strings.Contains(string(*target), tt.old) {
			t.Errorf("%s no longer contains %q: update this test", tt.file, tt.old)
			continue
		}
		*target = []byte(strings.Replace(string(*target), tt.old, tt.new, 1))
		problems := checkCompose(t, f)
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
			t.Errorf("%s: %q → %q: problems %q, want one naming %q", tt.file, tt.old, tt.new, problems, tt.want)
		}
	}
}
