package notify

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/seal"
)

// DefaultWebhookBackoff is the wait before each retry of a webhook, after
// Standard Webhooks' recommendation: with the first attempt, eight tries
// over about 28 hours.
var DefaultWebhookBackoff = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// Config configures the notification service.
type Config struct {
	Pool *pgxpool.Pool
	Ring *seal.Ring // seals webhook secrets
	Log  zerolog.Logger

	// SMTPURL is ORDERTUNE_SMTP_URL: smtp://user:pass@host:587 (STARTTLS)
	// or smtps://… (implicit TLS); "" sends no e-mail.
	SMTPURL string
	// MailFrom is ORDERTUNE_MAIL_FROM, the sender of every e-mail.
	MailFrom string
	// MailTLS, when set, is the TLS configuration for the SMTP server
	// (tests and the demo trust their own certificate with it).
	MailTLS *tls.Config
	// PublicURL is where users reach Ordertune, for links in e-mails.
	PublicURL string

	// AllowPrivate is ORDERTUNE_WEBHOOK_ALLOW_PRIVATE: webhooks may go to
	// http:// URLs and to private, loopback and link-local addresses.
	AllowPrivate bool
	// WebhookBackoff is the wait before each retry; its length is the
	// number of retries. Default DefaultWebhookBackoff.
	WebhookBackoff []time.Duration
	// FailureWindow is how long an endpoint may fail before it is
	// disabled and its owner e-mailed. Default 24 hours.
	FailureWindow time.Duration
	// WebhookTimeout bounds one webhook request. Default 10 seconds.
	WebhookTimeout time.Duration

	// PollInterval is how often workers look for due jobs besides
	// PostgreSQL's notifications (retries, scheduled jobs). Default 1 s.
	PollInterval time.Duration
	// DispatchInterval is how often the outbox is read for deliveries to
	// queue (see outbox.go). Default 100 ms.
	DispatchInterval time.Duration
	// Workers is how many deliveries run at once in this process
	// (default 50).
	Workers int
	// Now is the clock; default time.Now.
	Now func() time.Time

	// AddWorkers adds other features' job kinds to the queue this service
	// runs, and PeriodicJobs their scheduled jobs. River elects one leader
	// per database and only the leader schedules: a second river client
	// in the process could lose the election to this one and never
	// schedule, so features share this queue.
	AddWorkers   func(*river.Workers)
	PeriodicJobs []*river.PeriodicJob
	// JobContext, when set, makes the context that every job of the queue
	// runs with, this service's and the features' alike. Serve marks them
	// trading.WithoutTakeBack: nobody waits on a job, so none may take a
	// user's IBKR session back from their other login, including a job
	// added later that forgets to say so itself.
	JobContext func(context.Context) context.Context
	// RescueAfter is how long a job may stay running before river takes
	// it for stuck (its process died) and runs it again, here or on
	// another replica. Default 5 minutes; a job's own time limit is at
	// most 2 minutes, or RescueAfter when that is shorter.
	RescueAfter time.Duration
}

// Service enqueues events and, once started, delivers them.
type Service struct {
	pool   *pgxpool.Pool
	ring   *seal.Ring
	log    zerolog.Logger
	cfg    Config
	mailer *mailer // nil: no e-mail
	hooks  *hookSender
	river  *river.Client[pgx.Tx]

	periodic periodicTasks
}

// New builds the service. It neither connects nor starts workers; Run does.
func New(cfg Config) (*Service, error) {
	if cfg.Pool == nil {
		return nil, errors.New("notify: no database pool")
	}
	if cfg.WebhookBackoff == nil {
		cfg.WebhookBackoff = DefaultWebhookBackoff
	}
	if cfg.FailureWindow <= 0 {
		cfg.FailureWindow = 24 * time.Hour
	}
	if cfg.WebhookTimeout <= 0 {
		cfg.WebhookTimeout = 10 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.DispatchInterval <= 0 {
		cfg.DispatchInterval = 100 * time.Millisecond
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 50
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RescueAfter <= 0 {
		cfg.RescueAfter = 5 * time.Minute
	}
	s := &Service{pool: cfg.Pool, ring: cfg.Ring, log: cfg.Log, cfg: cfg}
	if cfg.SMTPURL != "" {
		m, err := newMailer(cfg)
		if err != nil {
			return nil, err
		}
		s.mailer = m
	}
	s.hooks = newHookSender(cfg.AllowPrivate, cfg.WebhookTimeout)

	workers := river.NewWorkers()
	river.AddWorker(workers, &webhookWorker{s: s})
	river.AddWorker(workers, &emailWorker{s: s})
	river.AddWorker(workers, &disabledEmailWorker{s: s})
	if cfg.AddWorkers != nil {
		cfg.AddWorkers(workers)
	}
	river.AddWorker(workers, &resetWorker{s: s})
	river.AddWorker(workers, &periodicWorker{s: s})
	var middleware []rivertype.Middleware
	if cfg.JobContext != nil {
		middleware = append(middleware, river.WorkerMiddlewareFunc(
			func(ctx context.Context, _ *rivertype.JobRow, work func(context.Context) error) error {
				return work(cfg.JobContext(ctx))
			}))
	}
	rc, err := river.NewClient(riverpgxv5.New(cfg.Pool), &river.Config{
		Middleware:        middleware,
		PeriodicJobs:      cfg.PeriodicJobs,
		Workers:           workers,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}},
		FetchPollInterval: cfg.PollInterval,
		FetchCooldown:     10 * time.Millisecond,
		Logger:            slog.New(zerologHandler{log: cfg.Log}),
		// Without RescueStuckJobsAfter river would wait JobTimeout plus an
		// hour before retrying a delivery whose process was killed.
		JobTimeout:           min(2*time.Minute, cfg.RescueAfter),
		RescueStuckJobsAfter: cfg.RescueAfter,
	})
	if err != nil {
		return nil, fmt.Errorf("notify: river client: %w", err)
	}
	s.river = rc
	return s, nil
}

// Queue returns the river client, for features that queue their own
// jobs on it (see Config.AddWorkers).
func (s *Service) Queue() *river.Client[pgx.Tx] { return s.river }

// EmailEnabled reports whether e-mail is configured.
func (s *Service) EmailEnabled() bool { return s.mailer != nil }

// Run works the queue until ctx ends, then stops gracefully: jobs in
// flight get up to 10 seconds to finish, after which they are cancelled
// and retried later (by this replica or another).
func (s *Service) Run(ctx context.Context) {
	if err := s.river.Start(ctx); err != nil {
		s.log.Error().Err(err).Msg("notify: start the queue")
		return
	}
	dispatched := make(chan struct{})
	go func() { s.DispatchLoop(ctx); close(dispatched) }()
	<-ctx.Done()
	<-dispatched
	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.river.Stop(stop); err != nil {
		s.log.Warn().Err(err).Msg("notify: stop the queue; cancelling jobs in flight")
		hard, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		s.river.StopAndCancel(hard)
	}
}

// webhookJob is one delivery of an event to an endpoint: unique by both,
// so the same event is never queued twice for one endpoint.
func (s *Service) webhookJob(userID, endpointID, eventID string) river.InsertManyParams {
	return river.InsertManyParams{
		Args: webhookArgs{UserID: userID, EndpointID: endpointID, EventID: eventID},
		InsertOpts: &river.InsertOpts{
			MaxAttempts: len(s.cfg.WebhookBackoff) + 1,
			UniqueOpts:  river.UniqueOpts{ByArgs: true},
		},
	}
}

func insertEvent(ctx context.Context, tx pgx.Tx, userID, typ string, data []byte, now time.Time) (string, error) {
	var id string
	err := tx.QueryRow(ctx, `INSERT INTO notification_events (id, user_id, type, data, created_at)
		VALUES (gen_random_uuid(), $1, $2, $3, $4) RETURNING id`, userID, typ, data, now).Scan(&id)
	if err != nil {
		return "", err
	}
	return id, nil
}

// event reads one of userID's events.
func event(ctx context.Context, q querier, userID, eventID string) (Notification, error) {
	var n Notification
	var data json.RawMessage
	err := q.QueryRow(ctx, `SELECT id, type, created_at, data FROM notification_events WHERE user_id = $1 AND id = $2`,
		userID, eventID).Scan(&n.ID, &n.Type, &n.CreatedAt, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return n, errs.E(errs.NotFound, "event not found")
	}
	n.Data = data
	return n, err
}

// querier is what a pool and a transaction share.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
