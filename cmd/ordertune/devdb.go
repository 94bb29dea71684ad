package main

import (
	"context"
	"errors"
	"os"
	"os/exec"

	"github.com/ordertune/ordertune/internal/postgres/localpg"
)

// cmdDevDB runs a command with a throwaway PostgreSQL cluster whose
// superuser URL is in ORDERTUNE_TEST_POSTGRES_URL, so one `make test` run
// shares one cluster across every test process. The superuser is the
// schema's owner there: pgtest migrates as it and connects the code under
// test as a member of the restricted ordertune_app role.
func cmdDevDB(ctx context.Context, a *app, args []string) error {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return errors.New("usage: ordertune devdb -- COMMAND [ARGS]")
	}
	dir, err := os.MkdirTemp("", "ordertune-devdb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c, err := localpg.Start(ctx, localpg.Options{DataDir: dir, Fast: true})
	if err != nil {
		return err
	}
	defer c.Stop()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.stdin, a.stdout, a.stderr
	cmd.Env = append(os.Environ(), localpg.TestURLEnv+"="+c.URL("postgres"))
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return exitCode(ee.ExitCode())
		}
		return err
	}
	return nil
}
