// Package deploy holds no Go code; its test validates docker-compose.yml with
// compose-go, the loader Docker Compose itself uses, so `docker compose
// config` succeeds without a Docker engine on this machine.
package deploy

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
)

func TestComposeFileValidates(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// The secrets the file mounts are filled by the operator; the examples
	// stand in for them here, in a copy of the tree's relevant files.
	dir := t.TempDir()
	compose, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), compose, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"postgres_password", "server_db_password", "migrate_database_url", "database_url", "master_keys"} {
		ex, err := os.ReadFile(filepath.Join(root, "deploy", "secrets", name+".example"))
		if err != nil {
			t.Fatalf("deploy/secrets/%s.example is missing: %v", name, err)
		}
		os.MkdirAll(filepath.Join(dir, "deploy", "secrets"), 0o755)
		os.WriteFile(filepath.Join(dir, "deploy", "secrets", name), ex, 0o600)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "docker-compose.yml")},
		cli.WithWorkingDirectory(dir), cli.WithName("ordertune"))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not validate: %v", err)
	}
	for _, svc := range []string{"postgres", "server", "sim"} {
		if _, err := project.GetService(svc); err != nil {
			t.Errorf("service %s: %v", svc, err)
		}
	}
	server, _ := project.GetService("server")
	for _, name := range []string{"DATABASE_URL", "ORDERTUNE_MIGRATE_DATABASE_URL"} {
		if server.Environment[name] != nil || server.Environment[name+"_FILE"] == nil {
			t.Errorf("%s must come from a secret file, not the compose file", name)
		}
	}
}
