package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/ordertune/ordertune/internal/config"
	"github.com/ordertune/ordertune/internal/postgres"
)

func cmdMigrate(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet(a, "migrate")
	fs.Usage = func() {
		fmt.Fprintln(a.stderr, "usage: ordertune migrate up|down|version   (as the owner: ORDERTUNE_MIGRATE_DATABASE_URL, else DATABASE_URL)")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("migrate needs exactly one of up, down, version")
	}
	cfg, err := config.Load(a.getenv, false)
	if err != nil {
		return err
	}
	if cfg.MigrateURL() == "" {
		return errors.New("neither ORDERTUNE_MIGRATE_DATABASE_URL nor DATABASE_URL is set")
	}
	m, err := postgres.NewMigrator(cfg.MigrateURL())
	if err != nil {
		return err
	}
	defer m.Close()
	switch fs.Arg(0) {
	case "up":
		err = m.Up()
	case "down":
		err = m.Down()
	case "version":
	default:
		fs.Usage()
		return fmt.Errorf("unknown migrate action %q", fs.Arg(0))
	}
	if err != nil {
		return err
	}
	st, err := m.State()
	if err != nil {
		return err
	}
	dirty := ""
	if st.Dirty {
		dirty = " (dirty)"
	}
	fmt.Fprintf(a.stdout, "schema version %d%s; this binary carries %d\n", st.Version, dirty, st.Latest)
	return nil
}
