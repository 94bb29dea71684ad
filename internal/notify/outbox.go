package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/ordertune/ordertune/internal/ids"
)

// An event's e-mail and webhook deliveries are river jobs, but the
// transaction that records the event does not insert them. It writes the
// event (marked in_app for the bell, as the user's choice says) and, when
// e-mail or a webhook may want it, a row of notification_outbox, all in one statement that can be part
// of the caller's own statement (Insert). The dispatcher turns outbox rows
// into river jobs in a transaction that deletes them: the outbox row
// commits with the change it reports, so a committed event is never lost,
// and it is queued once.
//
// Why not river's InsertManyTx in the caller's transaction, as before:
// it takes a pgx.Tx and round trips of its own, so an order's outcome,
// recorded in one round trip, took four with its notification (BEGIN, the
// outcome, the event, COMMIT), about 0.8 ms on a 2 ms confirm, against the
// issue's 10 % (scripts/BENCHMARKS.md, "Notifications in the outcome's
// statement").

// Insert is the part of a statement that records an event.
type Insert struct {
	// CTEs go into the caller's WITH list, after the relation they select
	// from; they are named npref, nev and nout.
	CTEs string
	// Args are their parameters, in order from the first number given to
	// InsertSQL.
	Args []any
	// EventID is the event's id.
	EventID string

	data []byte // the event's data as written (see Correct)
}

// InsertSQL returns the CTEs that record ev for the row of from, a
// relation of the caller's statement with a user_id column and at most one
// row (ev.UserID is not used; no row, no event): the event, marked in-app
// when the user's preference (or the default) says so, and its outbox row
// when e-mail is configured or the user has an endpoint subscribed to the
// type. Their parameters are numbered from first.
func (s *Service) InsertSQL(ev Event, from string, first int) (Insert, error) {
	if !KnownType(ev.Type) || ev.Type == WebhookTest {
		return Insert{}, fmt.Errorf("notify: %q is not an event type", ev.Type)
	}
	data, err := json.Marshal(ev.Data)
	if err != nil {
		return Insert{}, fmt.Errorf("notify: event %s: %w", ev.Type, err)
	}
	id := ids.New()
	p := func(i int) string { return "$" + strconv.Itoa(first+i) }
	r := strings.NewReplacer("$from", from, "$id", p(0), "$type", p(1), "$data", p(2), "$at", p(3),
		"$inapp", p(4), "$mail", p(5), "$email", p(6), "$webhook", p(7))
	return Insert{
		CTEs: r.Replace(insertCTEs),
		Args: []any{id, ev.Type, data, s.cfg.Now(), defaultOn(ChannelInApp, ev.Type), s.mailer != nil,
			defaultOn(ChannelEmail, ev.Type), defaultOn(ChannelWebhook, ev.Type)},
		EventID: id,
		data:    data,
	}, nil
}

// insertCTEs is InsertSQL's text, with its names for the relation and the
// parameters.
const insertCTEs = `
	npref AS (
		SELECT p.channel, p.enabled FROM notification_preferences p, $from f
		WHERE p.user_id = f.user_id AND p.event_type = $type::text),
	nev AS (
		INSERT INTO notification_events (id, user_id, type, data, created_at, in_app)
		SELECT $id::uuid, user_id, $type::text, $data::jsonb, $at::timestamptz,
			coalesce((SELECT enabled FROM npref WHERE channel = 'in_app'), $inapp::boolean)
		FROM $from
		RETURNING id, user_id, type),
	nout AS (
		INSERT INTO notification_outbox (event_id, created_at)
		SELECT id, $at FROM nev
		WHERE ($mail::boolean AND coalesce((SELECT enabled FROM npref WHERE channel = 'email'), $email::boolean))
			OR (coalesce((SELECT enabled FROM npref WHERE channel = 'webhook'), $webhook::boolean)
				AND EXISTS (SELECT 1 FROM webhook_endpoints w
					WHERE w.user_id = nev.user_id AND w.disabled_at IS NULL AND nev.type = ANY (w.event_types))))`

// Enqueue records ev in tx, the caller's transaction, and returns its id,
// which every delivery carries: a rollback sends nothing, a commit loses
// nothing. Its deliveries are queued by the dispatcher once tx commits.
func (s *Service) Enqueue(ctx context.Context, tx pgx.Tx, ev Event) (string, error) {
	in, err := s.InsertSQL(ev, "src", 2)
	if err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `WITH src AS (SELECT $1::uuid AS user_id), `+in.CTEs+` SELECT 1`,
		append([]any{ev.UserID}, in.Args...)...); err != nil {
		return "", fmt.Errorf("notify: enqueue %s: %w", ev.Type, err)
	}
	return in.EventID, nil
}

// dispatchBatch is how many outbox rows one dispatch takes.
const dispatchBatch = 500

// DispatchLoop queues the outbox's deliveries every DispatchInterval, and
// at once again after a full batch, until ctx ends. Run runs it, on every
// replica; rows are taken with SKIP LOCKED, so each is queued by one. A
// process that only inserts jobs (a benchmark) may run it alone.
func (s *Service) DispatchLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.DispatchInterval)
	defer t.Stop()
	for {
		n, err := s.dispatch(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("notify: queue the outbox's deliveries; retrying")
		}
		if n == dispatchBatch {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Backlog reports how many events wait in the outbox and how old the
// oldest is (0 when none waits), for the metrics.
func (s *Service) Backlog(ctx context.Context) (int, time.Duration, error) {
	var n int
	var oldest float64
	err := s.pool.QueryRow(ctx, `SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 FROM notification_outbox`).Scan(&n, &oldest)
	if err != nil {
		return 0, 0, fmt.Errorf("outbox backlog: %w", err)
	}
	return n, time.Duration(max(oldest, 0) * float64(time.Second)), nil
}

// dispatch queues the deliveries of up to dispatchBatch outbox events and
// deletes their rows, in one transaction, and returns how many it took. An
// empty outbox costs one index read, outside any transaction.
func (s *Service) dispatch(ctx context.Context) (int, error) {
	var due bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM notification_outbox)`).Scan(&due); err != nil || !due {
		return 0, err
	}
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, dispatchSQL, dispatchBatch)
		if err != nil {
			return err
		}
		var jobs []river.InsertManyParams
		var id, user, typ string
		var email, webhook *bool
		var endpoints []string
		_, err = pgx.ForEachRow(rows, []any{&id, &user, &typ, &email, &webhook, &endpoints}, func() error {
			n++
			if s.mailer != nil && orDefault(email, ChannelEmail, typ) {
				jobs = append(jobs, river.InsertManyParams{Args: emailArgs{UserID: user, EventID: id}})
			}
			if orDefault(webhook, ChannelWebhook, typ) {
				for _, ep := range endpoints {
					jobs = append(jobs, s.webhookJob(user, ep, id))
				}
			}
			return nil
		})
		if err != nil || len(jobs) == 0 {
			return err
		}
		_, err = s.river.InsertManyTx(ctx, tx, jobs)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("dispatch: %w", err)
	}
	return n, nil
}

// dispatchSQL takes outbox rows (oldest first, none another replica
// holds), deletes them and returns their events with the user's e-mail and
// webhook choices (NULL: not chosen) and subscribed endpoints, as they are
// when the deliveries are queued.
const dispatchSQL = `
	WITH d AS (
		DELETE FROM notification_outbox WHERE event_id IN (
			SELECT event_id FROM notification_outbox ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED)
		RETURNING event_id)
	SELECT ev.id, ev.user_id, ev.type,
		(SELECT enabled FROM notification_preferences p
			WHERE p.user_id = ev.user_id AND p.event_type = ev.type AND p.channel = 'email'),
		(SELECT enabled FROM notification_preferences p
			WHERE p.user_id = ev.user_id AND p.event_type = ev.type AND p.channel = 'webhook'),
		ARRAY(SELECT w.id FROM webhook_endpoints w
			WHERE w.user_id = ev.user_id AND w.disabled_at IS NULL AND ev.type = ANY (w.event_types) ORDER BY w.created_at)
	FROM d JOIN notification_events ev ON ev.id = d.event_id
	ORDER BY ev.created_at`

// orDefault is the user's choice for channel, or its default for type t.
func orDefault(chosen *bool, channel, t string) bool {
	if chosen != nil {
		return *chosen
	}
	return defaultOn(channel, t)
}

// Correct is for a caller that built the event in before the change it
// reports ran (see trading's recordLocked): given data as the change left
// it, it replaces the event's data when that differs from what in wrote,
// and reports whether it did.
func (s *Service) Correct(ctx context.Context, in Insert, data any) (bool, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return false, fmt.Errorf("notify: correct event %s: %w", in.EventID, err)
	}
	if bytes.Equal(b, in.data) {
		return false, nil
	}
	if _, err := s.pool.Exec(ctx, `UPDATE notification_events SET data = $2 WHERE id = $1`, in.EventID, b); err != nil {
		return true, fmt.Errorf("notify: correct event %s: %w", in.EventID, err)
	}
	return true, nil
}
