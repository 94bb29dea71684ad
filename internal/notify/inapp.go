package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/errs"
)

// List is a page of in-app notifications and the user's unread count.
type List struct {
	Items       []Notification `json:"items"`
	NextCursor  *string        `json:"next_cursor"`
	UnreadCount int            `json:"unread_count"`
}

// MaxListLimit bounds one page of notifications.
const MaxListLimit = 100

// Notifications returns userID's newest in-app notifications, at most
// limit, only the unread ones when unread is set.
func (s *Service) Notifications(ctx context.Context, userID string, unread bool, limit int) (List, error) {
	if limit <= 0 || limit > MaxListLimit {
		limit = 50
	}
	l := List{Items: []Notification{}}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT e.id, e.type, e.created_at, e.data, e.read_at
			FROM notification_events e
			WHERE e.user_id = $1 AND e.in_app AND (NOT $2 OR e.read_at IS NULL)
			ORDER BY e.created_at DESC, e.id DESC LIMIT $3`, userID, unread, limit)
		var n Notification
		var data json.RawMessage
		var readAt *time.Time
		_, err := pgx.ForEachRow(rows, []any{&n.ID, &n.Type, &n.CreatedAt, &data, &readAt}, func() error {
			item := n
			item.Data, item.ReadAt = append(json.RawMessage(nil), data...), readAt
			l.Items = append(l.Items, item)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM notification_events WHERE user_id = $1 AND in_app AND read_at IS NULL`, userID).Scan(&l.UnreadCount)
	})
	if err != nil {
		return List{}, fmt.Errorf("list notifications: %w", err)
	}
	return l, nil
}

// MarkRead marks one of userID's notifications read; another user's id is
// not found.
func (s *Service) MarkRead(ctx context.Context, userID, id string) error {
	if !validUUID(id) {
		return errs.E(errs.NotFound, "notification not found")
	}
	tag, err := s.pool.Exec(ctx, `UPDATE notification_events SET read_at = coalesce(read_at, $3) WHERE user_id = $1 AND id = $2 AND in_app`,
		userID, id, s.cfg.Now())
	if err != nil {
		return fmt.Errorf("mark notification read: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errs.E(errs.NotFound, "notification not found")
	}
	return nil
}

// MarkAllRead marks every one of userID's notifications read.
func (s *Service) MarkAllRead(ctx context.Context, userID string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE notification_events SET read_at = $2 WHERE user_id = $1 AND in_app AND read_at IS NULL`,
		userID, s.cfg.Now()); err != nil {
		return fmt.Errorf("mark notifications read: %w", err)
	}
	return nil
}
