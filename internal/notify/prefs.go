package notify

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/errs"
)

// Preferences are a user's per-channel choices, keyed by event type; the
// JSON shape of GET /settings/notifications.
type Preferences struct {
	Email   map[string]bool `json:"email"`
	Webhook map[string]bool `json:"webhook"`
	InApp   map[string]bool `json:"in_app"`
}

// choices are the rows a user changed: channel → event type → on.
type choices map[string]map[string]bool

func (c choices) on(channel, t string) bool {
	if v, ok := c[channel][t]; ok {
		return v
	}
	return defaultOn(channel, t)
}

func loadPreferences(ctx context.Context, tx pgx.Tx, userID string) (choices, error) {
	rows, _ := tx.Query(ctx, `SELECT channel, event_type, enabled FROM notification_preferences WHERE user_id = $1`, userID)
	c := choices{}
	var channel, t string
	var on bool
	_, err := pgx.ForEachRow(rows, []any{&channel, &t, &on}, func() error {
		if c[channel] == nil {
			c[channel] = map[string]bool{}
		}
		c[channel][t] = on
		return nil
	})
	return c, err
}

// Preferences returns userID's choices for every channel and event type,
// the defaults filled in.
func (s *Service) Preferences(ctx context.Context, userID string) (Preferences, error) {
	p, err := s.preferencesAfter(ctx, userID, nil)
	if err != nil {
		return Preferences{}, fmt.Errorf("notification preferences: %w", err)
	}
	return p, nil
}

// preferencesAfter runs change (nil: none) in a transaction and returns
// userID's choices as that transaction sees them after it.
func (s *Service) preferencesAfter(ctx context.Context, userID string, change func(pgx.Tx) error) (Preferences, error) {
	var c choices
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if change != nil {
			if err := change(tx); err != nil {
				return err
			}
		}
		var err error
		c, err = loadPreferences(ctx, tx, userID)
		return err
	})
	if err != nil {
		return Preferences{}, err
	}
	return c.public(), nil
}

func (c choices) public() Preferences {
	p := Preferences{Email: map[string]bool{}, Webhook: map[string]bool{}, InApp: map[string]bool{}}
	for _, t := range Types() {
		if t == WebhookTest {
			continue
		}
		p.Email[t] = c.on(ChannelEmail, t)
		p.Webhook[t] = c.on(ChannelWebhook, t)
		p.InApp[t] = c.on(ChannelInApp, t)
	}
	return p
}

// SetPreferences stores the choices in p (a channel or type left out keeps
// its setting) and returns the result.
func (s *Service) SetPreferences(ctx context.Context, userID string, p Preferences) (Preferences, error) {
	var fields []errs.FieldError
	check := func(channel string, m map[string]bool) {
		for t := range m {
			if !KnownType(t) || t == WebhookTest {
				fields = append(fields, errs.FieldError{Field: channel + "." + t, Message: "unknown event type"})
			}
		}
	}
	check(ChannelEmail, p.Email)
	check(ChannelWebhook, p.Webhook)
	check(ChannelInApp, p.InApp)
	if len(fields) > 0 {
		return Preferences{}, errs.Fields("unknown event types", fields...)
	}
	out, err := s.preferencesAfter(ctx, userID, func(tx pgx.Tx) error {
		for channel, m := range map[string]map[string]bool{ChannelEmail: p.Email, ChannelWebhook: p.Webhook, ChannelInApp: p.InApp} {
			for t, on := range m {
				if _, err := tx.Exec(ctx, `INSERT INTO notification_preferences (user_id, channel, event_type, enabled, updated_at)
					VALUES ($1, $2, $3, $4, $5)
					ON CONFLICT (user_id, channel, event_type) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at`,
					userID, channel, t, on, s.cfg.Now()); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return Preferences{}, fmt.Errorf("set notification preferences: %w", err)
	}
	return out, nil
}
