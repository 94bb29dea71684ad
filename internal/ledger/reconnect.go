package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/ordertune/ordertune/internal/trading"
)

// A tenant whose IBKR session was just re-established (a new live session
// token after IBKR restarted or refused the old one, the brokerage session
// re-opened or taken back from a competing login) may have fills that
// order polling missed while it was away: its executions are imported at
// once rather than at the next sweep. The broker's session cache tells
// Reconnected, which never blocks it; RunReconnects queues the imports as
// river jobs, one per (user, mode) however many reconnects come before it
// runs. With replicas only the owner of a tenant's session lease makes
// sessions, and the job's uniqueness holds across them anyway.

// ReconnectArgs is the job that imports a tenant's executions after its
// IBKR session was re-established.
type ReconnectArgs struct {
	UserID string `json:"user_id" river:"unique"`
	Mode   string `json:"mode" river:"unique"`
	// Reason is what re-established the session (logged; not part of the
	// job's identity).
	Reason string `json:"reason,omitempty"`
}

// Kind implements river.JobArgs.
func (ReconnectArgs) Kind() string { return "ledger.import_reconnect" }

// InsertOpts makes one job per tenant and mode until it has run: a
// reconnect while one waits is folded into it, and so is one while it
// runs (river requires running among the unique states; the 30-minute
// sweep covers that rare case).
func (ReconnectArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
		rivertype.JobStateRetryable, rivertype.JobStateScheduled,
	}}}
}

// The reconnect queue's bounds.
const (
	defaultReconnectDelay = 10 * time.Second
	reconnectBacklog      = 4096 // reconnects waiting for RunReconnects
	reconnectBatch        = 500  // jobs per insert
	reconnectHandOvers    = 8    // runs on replicas without the session before giving up
)

type reconnect struct {
	userID string
	mode   trading.Mode
	reason string
}

// Reconnected queues an import of the user's executions in mode after
// ReconnectDelay, because the user's IBKR session was just re-established
// for why; users without recent orders are left to the sweeps
// (queueReconnects). It never blocks and never calls IBKR or the
// database: when the backlog is full (thousands of tenants reconnecting at
// once, after IBKR's restart) the reconnect is dropped with a warning, and
// the next sweep imports the tenant.
func (s *Service) Reconnected(userID string, mode trading.Mode, why string) {
	if s.cfg.Queue == nil {
		return
	}
	select {
	case s.reconnects <- reconnect{userID: userID, mode: mode, reason: why}:
	default:
		s.droppedReconnects.Add(1) // logged by RunReconnects, once per batch
	}
}

// RunReconnects inserts the imports Reconnected queued, in batches, until
// ctx ends. Without Config.Queue it only waits for ctx.
func (s *Service) RunReconnects(ctx context.Context) {
	for {
		var first reconnect
		select {
		case <-ctx.Done():
			return
		case first = <-s.reconnects:
		}
		batch := []reconnect{first}
	drain:
		for len(batch) < reconnectBatch {
			select {
			case r := <-s.reconnects:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		if err := s.queueReconnects(ctx, batch); err != nil && ctx.Err() == nil {
			s.cfg.Log.Warn().Err(err).Int("tenants", len(batch)).
				Msg("ledger: imports after reconnects not queued; the next sweep imports these tenants")
		}
		if n := s.droppedReconnects.Swap(0); n > 0 {
			s.cfg.Log.Warn().Int64("tenants", n).
				Msg("ledger: too many reconnects at once; these tenants' executions wait for the next sweep")
		}
	}
}

// queueReconnects inserts one job per (user, mode) of batch, for the
// users the sweeps import: those with a confirmation in RecentOrders.
// After IBKR's nightly restart every active tenant reconnects at once, and
// the jobs share a queue with notifications; a tenant without recent
// orders has no fill that polling could have missed.
func (s *Service) queueReconnects(ctx context.Context, batch []reconnect) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ids := make([]string, 0, len(batch))
	for _, r := range batch {
		ids = append(ids, r.userID)
	}
	rows, err := s.pool.Query(ctx, `
		SELECT DISTINCT user_id::text FROM confirmations WHERE user_id = ANY($1::uuid[]) AND created_at >= $2`,
		ids, s.cfg.Now().Add(-s.cfg.RecentOrders))
	if err != nil {
		return fmt.Errorf("queue imports after reconnects: %w", err)
	}
	recent, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("queue imports after reconnects: %w", err)
	}
	traded := make(map[string]bool, len(recent))
	for _, u := range recent {
		traded[u] = true
	}
	at := s.cfg.Now().Add(s.cfg.ReconnectDelay)
	seen := map[reconnect]bool{}
	jobs := make([]river.InsertManyParams, 0, len(batch))
	for _, r := range batch {
		key := reconnect{userID: r.userID, mode: r.mode}
		if seen[key] || !traded[r.userID] {
			continue
		}
		seen[key] = true
		opts := ReconnectArgs{}.InsertOpts()
		opts.ScheduledAt = at
		jobs = append(jobs, river.InsertManyParams{
			Args: ReconnectArgs{UserID: r.userID, Mode: string(r.mode), Reason: r.reason}, InsertOpts: &opts})
	}
	if len(jobs) == 0 {
		return nil
	}
	if _, err := s.cfg.Queue.InsertMany(ctx, jobs); err != nil {
		return fmt.Errorf("queue imports after reconnects: %w", err)
	}
	return nil
}

type reconnectWorker struct {
	river.WorkerDefaults[ReconnectArgs]
	svc func() *Service
}

// Work imports the tenant's executions, on the replica holding the
// tenant's session (Config.Serves), unless the tenant's active mode changed
// meanwhile (that mode's session brings its own job). A failure is logged
// and not retried: the next sweep tries again.
func (w *reconnectWorker) Work(ctx context.Context, job *river.Job[ReconnectArgs]) error {
	s := w.svc()
	if s == nil {
		return errNotReady
	}
	log := s.logger(ctx).With().Str("user", job.Args.UserID).Str("mode", job.Args.Mode).Str("reason", job.Args.Reason).Logger()
	if s.cfg.Serves != nil && !s.cfg.Serves(job.Args.UserID) {
		if snoozes(job.Metadata) < reconnectHandOvers {
			// Another replica holds the session: back to the queue, for
			// a worker of the owner to take.
			return river.JobSnooze(time.Second)
		}
		log.Info().Msg("ledger: the tenant's session is held elsewhere; its import waits for the next sweep")
		return nil
	}
	acct, err := s.cfg.Broker.ActiveAccount(ctx, job.Args.UserID)
	if err != nil {
		log.Warn().Err(err).Msg("ledger: import after a reconnect failed; the next sweep tries again")
		return river.JobCancel(err)
	}
	if string(acct.Mode) != job.Args.Mode {
		log.Info().Str("active_mode", string(acct.Mode)).Msg("ledger: the active mode changed since the reconnect; no import")
		return nil
	}
	res, err := s.Import(trading.WithoutTakeBack(ctx), job.Args.UserID)
	if err != nil {
		failed(&log, err).Err(err).Msg("ledger: import after a reconnect failed; the next sweep tries again")
		return river.JobCancel(err)
	}
	if res.Stored > 0 || res.Recovered > 0 {
		s.ForgetPositions(job.Args.UserID)
	}
	log.Info().Int("read", res.Read).Int("stored", res.Stored).Int("recovered", res.Recovered).
		Msg("ledger: executions imported after a reconnect")
	return nil
}

// snoozes is how many times a job went back to the queue with
// river.JobSnooze: river counts them in the job's metadata, and leaves its
// Attempt as it was.
func snoozes(metadata []byte) int {
	var m struct {
		Snoozes int `json:"snoozes"`
	}
	_ = json.Unmarshal(metadata, &m) // none recorded yet: 0
	return m.Snoozes
}

// Timeout is the import's (importWorker.Timeout).
func (w *reconnectWorker) Timeout(*river.Job[ReconnectArgs]) time.Duration { return 2 * time.Minute }

// Reconnected is Service.Reconnected on the bound Service; before Bind it
// drops the reconnect (the sweep at the leader's start imports everyone).
func (j *Jobs) Reconnected(userID string, mode trading.Mode, why string) {
	if s := j.svc.Load(); s != nil {
		s.Reconnected(userID, mode, why)
	}
}
