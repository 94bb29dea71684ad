package notify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/riverqueue/river"
)

// periodicArgs is one run of a periodic task, named by Name.
type periodicArgs struct {
	Name string `json:"name"`
}

// Kind names the job in river's table.
func (periodicArgs) Kind() string { return "ordertune.periodic" }

// periodicTasks are the functions of the periodic tasks, by name.
type periodicTasks struct {
	mu  sync.Mutex
	fns map[string]func(context.Context) error
}

type periodicWorker struct {
	river.WorkerDefaults[periodicArgs]
	s *Service
}

func (w *periodicWorker) Work(ctx context.Context, job *river.Job[periodicArgs]) error {
	w.s.periodic.mu.Lock()
	fn := w.s.periodic.fns[job.Args.Name]
	w.s.periodic.mu.Unlock()
	if fn == nil {
		// A replica of another version scheduled it: not ours to run.
		return river.JobCancel(fmt.Errorf("no periodic task %q in this process", job.Args.Name))
	}
	return fn(ctx)
}

// Timeout lets a run take up to 20 minutes. One still running after
// Config.RescueAfter may be taken for stuck and started again elsewhere,
// so a task must bear two runs at once (claim its work item by item).
func (w *periodicWorker) Timeout(*river.Job[periodicArgs]) time.Duration { return 20 * time.Minute }

// AddPeriodic runs fn every interval, once among all the replicas sharing
// the database: river's elected leader schedules the run as a job unique
// for its period, and one worker anywhere takes it. The first run is when
// a leader starts. A run that fails is retried like any job; a run may
// overlap another (see periodicWorker.Timeout). Call it before Run.
func (s *Service) AddPeriodic(name string, every time.Duration, fn func(context.Context) error) error {
	if name == "" || every <= 0 || fn == nil {
		return errors.New("notify: a periodic task needs a name, an interval and a function")
	}
	s.periodic.mu.Lock()
	defer s.periodic.mu.Unlock()
	if _, dup := s.periodic.fns[name]; dup {
		return fmt.Errorf("notify: periodic task %q added twice", name)
	}
	if s.periodic.fns == nil {
		s.periodic.fns = map[string]func(context.Context) error{}
	}
	s.periodic.fns[name] = fn
	s.river.PeriodicJobs().Add(river.NewPeriodicJob(
		river.PeriodicInterval(every),
		func() (river.JobArgs, *river.InsertOpts) {
			return periodicArgs{Name: name}, &river.InsertOpts{
				MaxAttempts: 3,
				// One run per period even if a new leader starts within it.
				UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: every},
			}
		},
		&river.PeriodicJobOpts{ID: name, RunOnStart: true},
	))
	return nil
}
