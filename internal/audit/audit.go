// Package audit appends rows to Ordertune's audit trail. A row is written in
// the same transaction as the change it records, so the trail never claims
// a change that was rolled back, nor misses one that was committed.
//
// This package is the only writer of audit_events: features call Record
// inside their transaction, or put InsertSelect into the statement that
// makes the change when one round trip matters (the confirm path). The
// server's database role may only append rows and seal them (migration 7);
// the chain, sealed by the Sealer and checkpointed outside the database,
// reveals what the owner's rights could still change.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Event is one audit row. UserID is the account the event concerns, ActorID
// the account that caused it (an admin acting on a user; equal to UserID or
// empty when the user acted alone). Details must never hold a secret.
type Event struct {
	At      time.Time      // zero means the database's now()
	UserID  string         // a UUID, or "" for none
	ActorID string         // a UUID, or "" for none
	IP      string         // the client's address, or ""
	Action  string         // dotted verb such as "login.failure"
	Subject string         // what the event is about, such as a token id
	Details map[string]any // extra facts, stored as jsonb
}

// Record inserts ev inside tx.
func Record(ctx context.Context, tx pgx.Tx, ev Event) error {
	details := []byte("{}")
	if len(ev.Details) > 0 {
		b, err := json.Marshal(ev.Details)
		if err != nil {
			return fmt.Errorf("audit %s: encode details: %w", ev.Action, err)
		}
		details = b
	}
	var at *time.Time
	if !ev.At.IsZero() {
		t := ev.At.UTC()
		at = &t
	}
	_, err := tx.Exec(ctx, insertInto+`
		VALUES (coalesce($1, now()), $2, $3, $4, $5, $6, $7)`,
		at, nullUUID(ev.UserID), nullUUID(ev.ActorID), ev.IP, ev.Action, ev.Subject, details)
	if err != nil {
		return fmt.Errorf("audit %s: %w", ev.Action, err)
	}
	return nil
}

// Append records ev in a transaction of its own, for an event that changes
// nothing else, such as an admin reading the trail.
func Append(ctx context.Context, pool *pgxpool.Pool, ev Event) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return Record(ctx, tx, ev) })
}

// insertInto names the columns a writer sets; the chain columns (seq,
// prev_hash, hash) are the Sealer's.
const insertInto = `INSERT INTO audit_events (at, user_id, actor_id, ip, action, subject, details)`

// Exprs are SQL expressions for the columns of audit rows written by
// InsertSelect. An empty expression leaves the column at its default:
// now() for At, NULL for UserID, ActorID and IP, the empty string for
// Subject, an empty object for Details. Action is required.
type Exprs struct {
	At, UserID, ActorID, IP, Action, Subject, Details string
}

// InsertSelect returns a data-modifying statement for a WITH clause that
// appends one audit row for each row of from (a CTE or table name), with
// the columns computed by x. It lets a feature write a change and its audit
// row in one statement, one round trip:
//
//	WITH c AS (INSERT ... RETURNING id, user_id),
//	a AS (<InsertSelect(Exprs{Action: "'x.create'", Subject: "id::text"}, "c")>)
//	SELECT ...
//
// The expressions are SQL text and must come from the caller's code, never
// from input; values travel as parameters.
func InsertSelect(x Exprs, from string) string {
	if x.Action == "" {
		panic("audit.InsertSelect: no action")
	}
	or := func(expr, def string) string {
		if expr == "" {
			return def
		}
		return expr
	}
	return insertInto + ` SELECT ` + strings.Join([]string{
		or(x.At, "now()"), or(x.UserID, "NULL"), or(x.ActorID, "NULL"), or(x.IP, "NULL"),
		x.Action, or(x.Subject, "''"), or(x.Details, "'{}'"),
	}, ", ") + ` FROM ` + from
}

// clientIPKey is the context key of the client's address.
type clientIPKey struct{}

// WithClientIP returns ctx carrying the address of the client whose
// request it serves, for audit rows written deep in a feature.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// ClientIP returns the client's address carried by ctx, or "".
func ClientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}

func nullUUID(id string) *string {
	if id == "" {
		return nil
	}
	return &id
}
