// Package audit appends rows to Ordertune's audit trail. A row is written in
// the same transaction as the change it records, so the trail never claims
// a change that was rolled back, nor misses one that was committed.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
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
	_, err := tx.Exec(ctx, `
		INSERT INTO audit_events (at, user_id, actor_id, ip, action, subject, details)
		VALUES (coalesce($1, now()), $2, $3, $4, $5, $6, $7)`,
		at, nullUUID(ev.UserID), nullUUID(ev.ActorID), ev.IP, ev.Action, ev.Subject, details)
	if err != nil {
		return fmt.Errorf("audit %s: %w", ev.Action, err)
	}
	return nil
}

func nullUUID(id string) *string {
	if id == "" {
		return nil
	}
	return &id
}
