package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/config"
	"github.com/ordertune/ordertune/internal/logging"
	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/localpg"
)

// demoDataDir holds everything the demo keeps between runs: the PostgreSQL
// cluster, the master key and the simulated broker credentials.
const demoDataDir = ".data"

func cmdDemo(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet(a, "demo")
	dataDir := fs.String("data", demoDataDir, "folder for the demo's database and keys")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(a.getenv, true)
	if err != nil {
		return err
	}
	if a.getenv("ORDERTUNE_LOG_FORMAT") == "" {
		cfg.LogFormat = "console"
	}
	log := logging.New(a.stderr, cfg.LogLevel, cfg.LogFormat)
	say := func(format string, args ...any) { fmt.Fprintf(a.stdout, format+"\n", args...) }

	if cfg.DatabaseURL == "" {
		cluster, err := localpg.Start(ctx, localpg.Options{
			DataDir: filepath.Join(*dataDir, "postgres"),
			Log:     say,
		})
		if err != nil {
			return err
		}
		defer func() {
			say("stopping PostgreSQL")
			cluster.Stop()
		}()
		if err := ensureDatabase(ctx, cluster.URL("postgres"), "ordertune"); err != nil {
			return err
		}
		cfg.DatabaseURL = cluster.URL("ordertune")
	}
	say("applying migrations")
	if err := checkSchema(cfg.DatabaseURL, true, log); err != nil {
		return err
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()

	err = serve(ctx, cfg, log, pool, func(addr string) {
		say("")
		say("Ordertune demo is running at %s  (Ctrl-C stops it)", cfg.PublicURL)
		say("  health:    %s/healthz", cfg.PublicURL)
		say("  readiness: %s/readyz", cfg.PublicURL)
		say("")
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// ensureDatabase creates database name on the cluster at adminURL unless it
// exists, so a second demo run reuses the first one's data.
func ensureDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to local PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return fmt.Errorf("create database %s: %w", name, err)
		}
	}
	return nil
}
