package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/market"
	"github.com/ordertune/ordertune/internal/trading"
)

// Imports run as river jobs on the notification feature's queue, which
// every replica works: river elects one leader per database, and only the
// leader inserts periodic jobs, so each scheduled sweep happens once
// however many replicas run; the sweep's and each import's unique options
// fold duplicates (a sweep after an auction meeting the periodic one, an
// import asked for twice) into one job.

// ImportArgs is the job that imports one tenant's executions.
type ImportArgs struct {
	UserID string `json:"user_id"`
}

// Kind implements river.JobArgs.
func (ImportArgs) Kind() string { return "ledger.import" }

// InsertOpts makes one import per tenant and minute.
func (ImportArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: time.Minute}}
}

// SweepArgs is the job that queues an import for every tenant with recent
// orders.
type SweepArgs struct {
	// Reason says what scheduled it: "periodic", "auction" or "start".
	Reason string `json:"reason"`
}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "ledger.sweep" }

// InsertOpts makes one sweep per minute.
func (SweepArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByPeriod: time.Minute}}
}

type importWorker struct {
	river.WorkerDefaults[ImportArgs]
	svc func() *Service
}

// Work imports the tenant's executions. A tenant who is not connected, or
// whose connection IBKR refuses, is logged and not retried: the next sweep
// tries again.
//
// River hands the job to any replica, but only the one that holds the
// tenant's IBKR session (its lease) may use it, and a background import
// must not take it from that replica. Elsewhere the job is put back for a
// moment (a snooze, which costs no attempt), so that the owner takes it,
// for as long as servedElsewhereFor after it was queued.
func (w *importWorker) Work(ctx context.Context, job *river.Job[ImportArgs]) error {
	s := w.svc()
	if s == nil {
		return errNotReady
	}
	// Nobody waits on a background import: it never takes the user's
	// session back from another login.
	res, err := s.Import(trading.WithoutTakeBack(ctx), job.Args.UserID)
	if errors.Is(err, trading.ErrServedElsewhere) && time.Since(job.CreatedAt) < servedElsewhereFor {
		return river.JobSnooze(servedElsewhereSnooze)
	}
	if err != nil {
		failed(s.logger(ctx), err).Err(err).Str("user", job.Args.UserID).Msg("ledger: import of executions failed; the next sweep tries again")
		return river.JobCancel(err)
	}
	if res.Stored > 0 || res.Recovered > 0 {
		s.ForgetPositions(job.Args.UserID)
		s.logger(ctx).Info().Str("user", job.Args.UserID).Int("stored", res.Stored).Int("recovered", res.Recovered).
			Msg("ledger: executions imported")
	}
	return nil
}

// failed is the log event of a background import that failed: a warning,
// but only a line of information when another login (Client Portal, TWS)
// holds the user's IBKR session, which a background import never takes
// back. That is the user's choice, not a fault, and would otherwise warn
// at every sweep for as long as they keep the other login open.
func failed(log *zerolog.Logger, err error) *zerolog.Event {
	if errs.All(err, errs.BrokerSessionCompeting) {
		return log.Info()
	}
	return log.Warn()
}

// An import that another replica's session must make is offered again
// every servedElsewhereSnooze, for servedElsewhereFor: with N replicas each
// offer reaches the owner about once in N, and the next sweep comes later.
const (
	servedElsewhereSnooze = time.Second
	servedElsewhereFor    = 5 * time.Minute
)

// Timeout allows for IBKR's pacing (5 s between two executions lists of
// one session) behind a reconciliation pass.
func (w *importWorker) Timeout(*river.Job[ImportArgs]) time.Duration { return 2 * time.Minute }

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	svc func() *Service
}

// Work queues one import per tenant with recent orders.
func (w *sweepWorker) Work(ctx context.Context, job *river.Job[SweepArgs]) error {
	s := w.svc()
	if s == nil {
		return errNotReady
	}
	users, err := s.recentTenants(ctx)
	if err != nil {
		return err
	}
	if len(users) == 0 {
		return nil
	}
	client := river.ClientFromContext[pgx.Tx](ctx)
	jobs := make([]river.InsertManyParams, 0, len(users))
	for _, u := range users {
		jobs = append(jobs, river.InsertManyParams{Args: ImportArgs{UserID: u}})
	}
	if _, err := client.InsertMany(ctx, jobs); err != nil {
		return fmt.Errorf("queue imports: %w", err)
	}
	s.logger(ctx).Info().Str("reason", job.Args.Reason).Int("tenants", len(users)).Msg("ledger: imports queued")
	return nil
}

// recentTenants are the users with a confirmation in RecentOrders.
func (s *Service) recentTenants(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT DISTINCT user_id::text FROM confirmations WHERE created_at >= $1`, s.cfg.Now().Add(-s.cfg.RecentOrders))
	if err != nil {
		return nil, fmt.Errorf("recent tenants: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// errNotReady is a job that ran before the process bound its Service
// (Jobs.Bind); river retries it.
var errNotReady = errors.New("ledger: the service is not ready yet")

// Register adds the ledger's job kinds, worked by s, to workers.
func (s *Service) Register(workers *river.Workers) {
	register(workers, func() *Service { return s })
}

func register(workers *river.Workers, svc func() *Service) {
	river.AddWorker(workers, &importWorker{svc: svc})
	river.AddWorker(workers, &sweepWorker{svc: svc})
	river.AddWorker(workers, &reconnectWorker{svc: svc})
}

// Jobs registers the ledger's job kinds with a queue built before the
// Service (the queue's owner is built first, the ledger needs what comes
// after); Bind hands them the Service once it exists.
type Jobs struct{ svc atomic.Pointer[Service] }

// Register adds the ledger's job kinds to workers.
func (j *Jobs) Register(workers *river.Workers) { register(workers, j.svc.Load) }

// Bind makes s work the jobs.
func (j *Jobs) Bind(s *Service) { j.svc.Store(s) }

// PeriodicJobs are the scheduled sweeps with the Service's settings.
func (s *Service) PeriodicJobs() []*river.PeriodicJob {
	return PeriodicJobs(s.cfg.Market, s.cfg.ImportEvery, s.cfg.AfterAuction)
}

// PeriodicJobs are the scheduled sweeps: every every (and once when the
// leader starts), and afterAuction after each opening and closing auction
// of clock's exchange. Zero durations take Config's defaults.
func PeriodicJobs(clock *market.Clock, every, afterAuction time.Duration) []*river.PeriodicJob {
	if every <= 0 {
		every = defaultImportEvery
	}
	if afterAuction <= 0 {
		afterAuction = defaultAfterAuction
	}
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(every),
			func() (river.JobArgs, *river.InsertOpts) { return SweepArgs{Reason: "periodic"}, nil },
			&river.PeriodicJobOpts{ID: "ledger.sweep.periodic", RunOnStart: true}),
		river.NewPeriodicJob(AuctionSchedule{Market: clock, After: afterAuction},
			func() (river.JobArgs, *river.InsertOpts) { return SweepArgs{Reason: "auction"}, nil },
			&river.PeriodicJobOpts{ID: "ledger.sweep.auction"}),
	}
}

// AuctionSchedule is a river.PeriodicSchedule: After past each trading
// day's open (the opening auction) and close (the closing auction, early
// closes included).
type AuctionSchedule struct {
	Market *market.Clock
	After  time.Duration
}

// Next returns the first run after current.
func (a AuctionSchedule) Next(current time.Time) time.Time {
	t := current
	for i := 0; i < 30; i++ {
		d := a.Market.DayOf(t)
		if d.TradingDay {
			for _, at := range []time.Time{d.Open.Add(a.After), d.Close.Add(a.After)} {
				if at.After(current) {
					return at
				}
			}
		}
		t = d.Date.AddDate(0, 0, 1).Add(time.Hour) // the next day, past any DST gap at midnight
	}
	return current.Add(24 * time.Hour)
}
