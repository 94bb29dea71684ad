package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AppRole is the group role migration 7 creates and grants to: the server
// connects as a LOGIN role that is a member of it, while migrations run as
// the owner. It may append to the audit trail and the status history but
// never change or remove them (see deploy/README.md).
const AppRole = "ordertune_app"

// EnsureAppLogin creates the LOGIN role name as a member of AppRole unless
// it exists, connecting with ownerURL (a role allowed to create roles). It
// sets no password: it is for local clusters that trust local connections
// (the demo, tests); operators create theirs as deploy/README.md shows.
func EnsureAppLogin(ctx context.Context, ownerURL, name string) error {
	conn, err := pgx.Connect(ctx, ownerURL)
	if err != nil {
		return fmt.Errorf("create the application role: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("create the application role: %w", err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE ROLE "+pgx.Identifier{name}.Sanitize()+" LOGIN IN ROLE "+AppRole)
	if err != nil {
		return fmt.Errorf("create the application role %s: %w", name, err)
	}
	return nil
}

// WithUser returns the connection URL rawURL with its user replaced by
// user and no password.
func WithUser(rawURL, user string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", errors.New("parse database URL: invalid connection string")
	}
	u.User = url.User(user)
	return u.String(), nil
}

// CanEraseAudit reports whether the pool's role could change or remove
// audit rows outright: a superuser, the owner, or a role granted DELETE,
// TRUNCATE or UPDATE on the whole table. The server warns when it runs so.
func CanEraseAudit(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	var erasable bool
	err := pool.QueryRow(ctx, `
		SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
			OR pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = 'audit_events'::regclass), 'USAGE')
			OR has_table_privilege('audit_events', 'DELETE, TRUNCATE, UPDATE')`).Scan(&erasable)
	if err != nil {
		return false, fmt.Errorf("check the database role: %w", err)
	}
	return erasable, nil
}
