package notify

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ids"
)

// secretField names webhook secrets in the sealed data's associated data.
const secretField = "webhook_secret"

// SecretPrefix starts every webhook secret, as Standard Webhooks names it.
const SecretPrefix = "whsec_"

// MaxEndpoints bounds one user's webhook endpoints.
const MaxEndpoints = 10

// Endpoint is a webhook endpoint as the API shows it. Secret is set only in
// the answer to its creation.
type Endpoint struct {
	ID         string     `json:"id"`
	URL        string     `json:"url"`
	EventTypes []string   `json:"event_types"`
	Secret     string     `json:"secret,omitempty"`
	DisabledAt *time.Time `json:"disabled_at"`
	CreatedAt  time.Time  `json:"created_at"`
}

// NewEndpoint is the request to create an endpoint.
type NewEndpoint struct {
	URL        string   `json:"url"`
	EventTypes []string `json:"event_types"`
}

// Delivery is one attempt to deliver an event to an endpoint.
type Delivery struct {
	EventID    string    `json:"event_id"`
	EventType  string    `json:"event_type"`
	Attempt    int       `json:"attempt"`
	StatusCode *int      `json:"status_code"`
	Error      string    `json:"error"`
	DurationMS int       `json:"duration_ms"`
	At         time.Time `json:"at"`
}

func validUUID(s string) bool { return ids.Valid(s) }

// CheckURL reports what is wrong with a webhook target, or nil: an
// absolute https URL (http too when private targets are allowed) with a
// host, no credentials, and not an address literal of a private, loopback
// or link-local network unless allowed. Names are checked again on the
// resolved address when the request connects.
func CheckURL(raw string, allowPrivate bool) error {
	if len(raw) > 2048 {
		return errors.New("too long (at most 2048 characters)")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return errors.New("not an absolute URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowPrivate:
	default:
		return errors.New("must start with https://")
	}
	if u.User != nil {
		return errors.New("must not carry a user name or password")
	}
	if u.Fragment != "" {
		return errors.New("must not have a fragment")
	}
	if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && !allowPrivate && !publicAddr(ip) {
		return errors.New("must be a public address")
	}
	return nil
}

func checkEventTypes(types []string) error {
	if len(types) == 0 {
		return errors.New("name at least one event type")
	}
	for _, t := range types {
		if !KnownType(t) || t == WebhookTest {
			return fmt.Errorf("unknown event type %q", t)
		}
	}
	return nil
}

// CreateEndpoint adds a webhook endpoint for userID and returns it with
// its secret, which is never shown again.
func (s *Service) CreateEndpoint(ctx context.Context, userID string, in NewEndpoint) (Endpoint, error) {
	var fields []errs.FieldError
	if err := CheckURL(in.URL, s.cfg.AllowPrivate); err != nil {
		fields = append(fields, errs.FieldError{Field: "url", Message: err.Error()})
	}
	if err := checkEventTypes(in.EventTypes); err != nil {
		fields = append(fields, errs.FieldError{Field: "event_types", Message: err.Error()})
	}
	if len(fields) > 0 {
		return Endpoint{}, errs.Fields("invalid webhook endpoint", fields...)
	}
	if s.ring == nil {
		return Endpoint{}, errs.E(errs.Unavailable, "webhooks need a master key")
	}
	key := make([]byte, 32)
	rand.Read(key)
	types := slices.Clone(in.EventTypes)
	slices.Sort(types)
	types = slices.Compact(types)
	ep := Endpoint{URL: in.URL, EventTypes: types, Secret: SecretPrefix + base64.StdEncoding.EncodeToString(key), CreatedAt: s.cfg.Now()}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhook_endpoints WHERE user_id = $1`, userID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxEndpoints {
			return errs.E(errs.Conflict, "at most %d webhook endpoints", MaxEndpoints)
		}
		if err := tx.QueryRow(ctx, `SELECT gen_random_uuid()`).Scan(&ep.ID); err != nil {
			return err
		}
		sealed, err := s.ring.Seal([]byte(ep.Secret), userID, secretField, ep.ID)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO webhook_endpoints (id, user_id, url, event_types, secret, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, ep.ID, userID, ep.URL, ep.EventTypes, sealed, ep.CreatedAt)
		return err
	})
	if err != nil {
		if errs.As(err) != nil {
			return Endpoint{}, err
		}
		return Endpoint{}, fmt.Errorf("create webhook endpoint: %w", err)
	}
	return ep, nil
}

// Endpoints lists userID's webhook endpoints, without secrets.
func (s *Service) Endpoints(ctx context.Context, userID string) ([]Endpoint, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, url, event_types, disabled_at, created_at FROM webhook_endpoints
		WHERE user_id = $1 ORDER BY created_at, id`, userID)
	eps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Endpoint, error) {
		var e Endpoint
		err := r.Scan(&e.ID, &e.URL, &e.EventTypes, &e.DisabledAt, &e.CreatedAt)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	if eps == nil {
		eps = []Endpoint{}
	}
	return eps, nil
}

// DeleteEndpoint removes one of userID's endpoints with its delivery log;
// deliveries still queued find it gone and stop.
func (s *Service) DeleteEndpoint(ctx context.Context, userID, id string) error {
	if !validUUID(id) {
		return errs.E(errs.NotFound, "webhook endpoint not found")
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhook_endpoints WHERE user_id = $1 AND id = $2`, userID, id)
	if err != nil {
		return fmt.Errorf("delete webhook endpoint: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errs.E(errs.NotFound, "webhook endpoint not found")
	}
	return nil
}

// TestEndpoint queues a webhook.test event to one of userID's endpoints
// (also a disabled one, which this re-enables: the user is checking it)
// and returns the event id.
func (s *Service) TestEndpoint(ctx context.Context, userID, id string) (string, error) {
	if !validUUID(id) {
		return "", errs.E(errs.NotFound, "webhook endpoint not found")
	}
	var eventID string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET disabled_at = NULL, failing_since = NULL
			WHERE user_id = $1 AND id = $2`, userID, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errs.E(errs.NotFound, "webhook endpoint not found")
		}
		data := []byte(`{"message":"This is a test event from Ordertune."}`)
		if eventID, err = insertEvent(ctx, tx, userID, WebhookTest, data, s.cfg.Now()); err != nil {
			return err
		}
		_, err = s.river.InsertManyTx(ctx, tx, []river.InsertManyParams{s.webhookJob(userID, id, eventID)})
		return err
	})
	if err != nil {
		if errs.As(err) != nil {
			return "", err
		}
		return "", fmt.Errorf("test webhook endpoint: %w", err)
	}
	return eventID, nil
}

// Deliveries lists the newest attempts to deliver to one of userID's
// endpoints.
func (s *Service) Deliveries(ctx context.Context, userID, id string, limit int) ([]Delivery, error) {
	if !validUUID(id) {
		return nil, errs.E(errs.NotFound, "webhook endpoint not found")
	}
	if limit <= 0 || limit > 200 {
		limit = 100
	}
	var ds []Delivery
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE user_id = $1 AND id = $2)`,
			userID, id).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return errs.E(errs.NotFound, "webhook endpoint not found")
		}
		rows, _ := tx.Query(ctx, `SELECT event_id, event_type, attempt, status_code, error, duration_ms, at
			FROM webhook_deliveries WHERE user_id = $1 AND endpoint_id = $2 ORDER BY at DESC, id DESC LIMIT $3`, userID, id, limit)
		var err error
		ds, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) {
			var d Delivery
			err := r.Scan(&d.EventID, &d.EventType, &d.Attempt, &d.StatusCode, &d.Error, &d.DurationMS, &d.At)
			return d, err
		})
		return err
	})
	if err != nil {
		if errs.As(err) != nil {
			return nil, err
		}
		return nil, fmt.Errorf("list webhook deliveries: %w", err)
	}
	if ds == nil {
		ds = []Delivery{}
	}
	return ds, nil
}
