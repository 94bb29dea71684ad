package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Entry is one audit row as admins read it.
type Entry struct {
	ID      int64           `json:"id"`
	Seq     *int64          `json:"seq"`
	At      time.Time       `json:"at"`
	UserID  *string         `json:"user_id"`
	ActorID *string         `json:"actor_id"`
	IP      *string         `json:"ip"`
	Action  string          `json:"action"`
	Subject string          `json:"subject"`
	Details json.RawMessage `json:"details"`
	// Sealed reports whether the row is in the hash chain yet.
	Sealed bool `json:"sealed"`
}

// ListFilter selects audit rows, newest first.
type ListFilter struct {
	UserID string // rows about this user; "" for all
	Action string // exact action; "" for all
	Limit  int    // 1..500
	// Before lists rows with an id below it (the cursor); 0 starts at the newest.
	Before int64
}

// List returns audit rows newest first and the cursor of the next page
// ("" at the end).
func List(ctx context.Context, pool *pgxpool.Pool, f ListFilter) ([]Entry, string, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	rows, err := pool.Query(ctx, `
		SELECT `+entryColumns+` FROM audit_events
		WHERE ($1 = '' OR user_id::text = $1) AND ($2 = '' OR action = $2) AND ($3 = 0 OR id < $3)
		ORDER BY id DESC LIMIT $4`, f.UserID, f.Action, f.Before, f.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list audit trail: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanEntry)
	if err != nil {
		return nil, "", fmt.Errorf("list audit trail: %w", err)
	}
	next := ""
	if len(list) > f.Limit {
		list = list[:f.Limit]
		next = strconv.FormatInt(list[len(list)-1].id, 10)
	}
	out := make([]Entry, 0, len(list))
	for _, e := range list {
		out = append(out, Entry{ID: e.id, Seq: e.seq, At: e.at.UTC(), UserID: e.userID, ActorID: e.actorID, IP: e.ip,
			Action: e.action, Subject: e.subject, Details: json.RawMessage(e.details), Sealed: e.seq != nil})
	}
	return out, next, nil
}
