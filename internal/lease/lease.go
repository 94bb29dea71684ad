// Package lease gives each tenant's IBKR session one owner among the
// replicas of `ordertune serve`, coordinated through PostgreSQL alone.
//
// IBKR keeps one live session token per consumer: when two replicas each
// hand-shake for the same tenant, each new token supersedes the other's and
// both keep failing. A lease names the one replica that may hand-shake, open
// the brokerage session, tickle and place or cancel orders for a (user,
// mode); the others forward the tenant's requests to it.
//
// A lease lives while its expires_at (database time) is in the future. A
// Manager renews every lease it holds with one statement per interval and
// believes it holds a lease only until TTL minus a margin after the start of
// its last successful renewal, measured on its own clock: by then the row
// may have expired and another replica may have taken it. Every change of
// owner increments the lease's generation, and a released lease keeps its
// row, so a generation is never handed out twice; work prepared under one
// generation (a cached session) is thrown away when the replica holds
// another one (fencing).
package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/tick"
)

// Key names one tenant session: a user's connection in one mode ("live" or
// "paper").
type Key struct {
	UserID string
	Mode   string
}

// Owner is the replica holding a lease.
type Owner struct {
	Replica    string
	URL        string // where other replicas forward the tenant's requests
	Mode       string
	Generation int64
	ExpiresAt  time.Time
}

// BusyError is returned by Acquire when another replica holds a live lease
// on the key.
type BusyError struct {
	Key   Key
	Owner Owner
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("lease %s/%s is held by replica %s until %s", e.Key.UserID, e.Key.Mode, e.Owner.Replica,
		e.Owner.ExpiresAt.UTC().Format(time.RFC3339Nano))
}

// ErrDraining is returned by Acquire once Drain was called: a replica that is
// shutting down takes no new tenants.
var ErrDraining = errors.New("lease: this replica is shutting down")

// Config configures a Manager.
type Config struct {
	Pool *pgxpool.Pool
	// RenewPool, when set, carries the renewals alone, so that a renewal
	// never queues behind a burst of acquisitions and owner look-ups on
	// Pool (a late renewal makes a live replica give its tenants up). One
	// connection is enough. Nil means Pool.
	RenewPool *pgxpool.Pool
	// Replica identifies this process among the replicas; it must be unique
	// per process (a random id per start is right).
	Replica string
	// URL is where other replicas reach this one (ORDERTUNE_INTERNAL_URL).
	URL string
	// TTL is how long a lease lives after its last renewal (default 15 s):
	// the longest a dead replica's tenants wait for another owner.
	TTL time.Duration
	// RenewEvery is the renewal period (default TTL/3).
	RenewEvery time.Duration
	// Margin is how long before the lease's TTL ends the holder stops
	// believing in it (default 1 s): room for clock rate drift and for the
	// time between the start of the renewal and the database's now().
	Margin time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnLost, when set, is told of every lease this replica held and lost
	// (a renewal that did not return it, or came too late). It runs on
	// the renewing goroutine, without the Manager's lock.
	OnLost func(Key)
	// OnRenew, when set, is told how long each batch renewal took and how
	// many leases it renewed (for metrics).
	OnRenew func(d time.Duration, n int, err error)
	// OnTakeover, when set, is told of every lease taken over from
	// another (dead or departed) replica's expired row.
	OnTakeover func()
	Log        zerolog.Logger
}

func (c Config) withDefaults() Config {
	if c.TTL <= 0 {
		c.TTL = 15 * time.Second
	}
	if c.RenewEvery <= 0 {
		c.RenewEvery = c.TTL / 3
	}
	if c.Margin <= 0 {
		c.Margin = time.Second
	}
	if c.Margin >= c.TTL {
		c.Margin = c.TTL / 4
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RenewPool == nil {
		c.RenewPool = c.Pool
	}
	return c
}

// held is a lease this replica believes it holds.
type held struct {
	gen        int64
	acquiredAt time.Time // local time the acquiring statement started
	until      time.Time // local time after which the lease is not trusted
}

// Manager acquires, renews and releases this replica's leases. It is safe
// for concurrent use.
type Manager struct {
	cfg Config

	mu       sync.Mutex
	held     map[Key]held
	remote   map[Key]remote // other replicas' leases, as Route last read them
	draining bool
}

// New returns a Manager; Run renews its leases.
func New(cfg Config) (*Manager, error) {
	if cfg.Pool == nil || cfg.Replica == "" {
		return nil, errors.New("lease: a pool and a replica id are required")
	}
	return &Manager{cfg: cfg.withDefaults(), held: map[Key]held{}, remote: map[Key]remote{}}, nil
}

// Replica returns this replica's id.
func (m *Manager) Replica() string { return m.cfg.Replica }

// URL returns this replica's internal URL.
func (m *Manager) URL() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg.URL
}

// SetURL sets this replica's internal URL, for a listener whose port is
// known only once bound; leases taken later carry it.
func (m *Manager) SetURL(url string) {
	m.mu.Lock()
	m.cfg.URL = url
	m.mu.Unlock()
}

// TTL returns the leases' time to live.
func (m *Manager) TTL() time.Duration { return m.cfg.TTL }

// Held reports whether this replica holds k now, and under which
// generation. It reads memory only: the confirm path pays no database round
// trip for it.
func (m *Manager) Held(k Key) (gen int64, ok bool) {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.held[k]
	if !ok || !now.Before(h.until) {
		return 0, false
	}
	return h.gen, true
}

// HeldUser reports whether this replica holds a lease on any of userID's
// sessions, from memory.
//
// It looks the user's keys up rather than scanning every lease: routing
// asks it for every request, and a scan of 10,000 tenants' leases took
// 15 % of a busy server's CPU (scripts/BENCHMARKS.md).
func (m *Manager) HeldUser(userID string) bool {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mode := range modes {
		if h, ok := m.held[Key{UserID: userID, Mode: mode}]; ok && now.Before(h.until) {
			return true
		}
	}
	return false
}

// modes are the modes a lease can be held in: the table's check
// constraint (migration 16) refuses any other.
var modes = [...]string{"live", "paper"}

// Count returns how many leases this replica holds (for metrics).
func (m *Manager) Count() int {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, h := range m.held {
		if now.Before(h.until) {
			n++
		}
	}
	return n
}

// Acquire makes this replica k's owner and returns the lease's generation:
// at once from memory when it holds k, else in one statement that takes the
// row when it is free, expired or already this replica's. When another
// replica holds a live lease, the error is a *BusyError naming it.
func (m *Manager) Acquire(ctx context.Context, k Key) (int64, error) {
	return m.acquire(ctx, k, 2)
}

// acquire is Acquire with tries attempts at a row that vanishes between
// the take and the read of its owner.
func (m *Manager) acquire(ctx context.Context, k Key, tries int) (int64, error) {
	if gen, ok := m.Held(k); ok {
		return gen, nil
	}
	m.mu.Lock()
	draining := m.draining
	m.mu.Unlock()
	if draining {
		return 0, ErrDraining
	}
	start := m.cfg.Now()
	var gen int64
	var takeover bool
	err := m.cfg.Pool.QueryRow(ctx, `
		WITH prev AS (
			SELECT owner, expires_at FROM broker_session_leases WHERE user_id = $1 AND mode = $2
		)
		INSERT INTO broker_session_leases AS l (user_id, mode, owner, owner_url, generation, acquired_at, expires_at)
		VALUES ($1, $2, $3, $4, 1, now(), now() + $5 * interval '1 millisecond')
		ON CONFLICT (user_id, mode) DO UPDATE
		SET owner = EXCLUDED.owner, owner_url = EXCLUDED.owner_url,
			-- Still this replica's live lease (two requests raced to take
			-- it): the same generation, or the first one's session would
			-- look fenced off.
			generation = CASE WHEN l.owner = EXCLUDED.owner AND l.expires_at > now() THEN l.generation ELSE l.generation + 1 END,
			acquired_at = now(), expires_at = EXCLUDED.expires_at
		WHERE l.owner = EXCLUDED.owner OR l.expires_at <= now()
		RETURNING generation,
			-- Taken from another replica that died (its row expired), not
			-- one that released it.
			coalesce((SELECT owner <> $3 AND expires_at <> '-infinity' AND expires_at <= now() FROM prev), false)`,
		k.UserID, k.Mode, m.cfg.Replica, m.URL(), m.cfg.TTL.Milliseconds()).Scan(&gen, &takeover)
	if errors.Is(err, pgx.ErrNoRows) {
		o, found, oerr := m.owner(ctx, `user_id = $1 AND mode = $2`, k.UserID, k.Mode)
		if oerr != nil {
			return 0, oerr
		}
		if !found && tries > 1 {
			// Released or expired between the two statements: try again.
			return m.acquire(ctx, k, tries-1)
		}
		return 0, &BusyError{Key: k, Owner: o}
	}
	if err != nil {
		return 0, fmt.Errorf("acquire lease %s/%s: %w", k.UserID, k.Mode, err)
	}
	if takeover && m.cfg.OnTakeover != nil {
		m.cfg.OnTakeover()
	}
	m.mu.Lock()
	m.held[k] = held{gen: gen, acquiredAt: start, until: start.Add(m.cfg.TTL - m.cfg.Margin)}
	delete(m.remote, k)
	m.mu.Unlock()
	return gen, nil
}

// Owner returns the replica holding a live lease on any of userID's
// sessions, and false when none does.
func (m *Manager) Owner(ctx context.Context, userID string) (Owner, bool, error) {
	return m.owner(ctx, `user_id = $1`, userID)
}

func (m *Manager) owner(ctx context.Context, where string, args ...any) (Owner, bool, error) {
	var o Owner
	err := m.cfg.Pool.QueryRow(ctx, `
		SELECT owner, owner_url, mode, generation, expires_at
		FROM broker_session_leases
		WHERE `+where+` AND expires_at > now()
		ORDER BY expires_at DESC
		LIMIT 1`, args...).Scan(&o.Replica, &o.URL, &o.Mode, &o.Generation, &o.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Owner{}, false, nil
	}
	if err != nil {
		return Owner{}, false, fmt.Errorf("read lease owner: %w", err)
	}
	return o, true, nil
}

// releaseSQL gives leases up by ending them rather than deleting their
// rows: a row keeps its generation for as long as its user exists, so the
// next owner's generation is always new. A deleted row would start again
// at 1, and a replica still caching a session made under generation 1
// (before another replica took the tenant over and released it) would
// take the new lease for its own and act on a superseded token.
// '-infinity' tells a released lease from an expired one.
const releaseSQL = `UPDATE broker_session_leases SET expires_at = '-infinity'`

// ReleaseUser gives up this replica's leases on userID's sessions (the
// credentials or the active mode changed), so the next request for the
// tenant may be served by any replica.
func (m *Manager) ReleaseUser(ctx context.Context, userID string) error {
	m.mu.Lock()
	for k := range m.held {
		if k.UserID == userID {
			delete(m.held, k)
		}
	}
	m.mu.Unlock()
	_, err := m.cfg.Pool.Exec(ctx, releaseSQL+` WHERE user_id = $1 AND owner = $2 AND expires_at > now()`, userID, m.cfg.Replica)
	if err != nil {
		return fmt.Errorf("release leases of %s: %w", userID, err)
	}
	return nil
}

// Drain stops Acquire from taking new leases; the ones held stay until
// ReleaseAll.
func (m *Manager) Drain() {
	m.mu.Lock()
	m.draining = true
	m.mu.Unlock()
}

// Undrain lets Acquire take leases again after Drain or ReleaseAll (a
// replica that stays up, as in tests and benchmarks).
func (m *Manager) Undrain() {
	m.mu.Lock()
	m.draining = false
	m.mu.Unlock()
}

// ReleaseAll gives up every lease of this replica at once (a graceful
// shutdown, after the requests in flight finished), so other replicas take
// its tenants without waiting for the leases to expire. It returns how many
// rows it deleted.
func (m *Manager) ReleaseAll(ctx context.Context) (int, error) {
	m.mu.Lock()
	m.draining = true
	clear(m.held)
	m.mu.Unlock()
	tag, err := m.cfg.Pool.Exec(ctx, releaseSQL+` WHERE owner = $1 AND expires_at > now()`, m.cfg.Replica)
	if err != nil {
		return 0, fmt.Errorf("release leases: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// Run renews this replica's leases every RenewEvery until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	tick.Every(ctx, m.cfg.RenewEvery, func() {
		if _, err := m.Renew(ctx); err != nil && ctx.Err() == nil {
			m.cfg.Log.Warn().Err(err).Msg("lease renewal failed; the leases decay unless the next one succeeds")
		}
	})
}

// Renew extends every lease this replica holds, in one statement, and
// forgets (telling OnLost) the ones the database no longer gives it. It
// returns how many it renewed.
//
// Renew judges only the leases it asked the database about, as they were
// when it asked: a lease acquired, or acquired again, while the statement
// ran is not in its answer, and dropping it for that would make a replica
// give up a session whose row is still live and its own.
func (m *Manager) Renew(ctx context.Context) (int, error) {
	start := m.cfg.Now()
	m.mu.Lock()
	asked := make(map[Key]held, len(m.held))
	users := make([]string, 0, len(m.held))
	modes := make([]string, 0, len(m.held))
	for k, h := range m.held {
		asked[k] = h
		users = append(users, k.UserID)
		modes = append(modes, k.Mode)
	}
	m.mu.Unlock()
	if len(users) == 0 {
		return 0, nil
	}
	rows, err := m.cfg.RenewPool.Query(ctx, `
		UPDATE broker_session_leases AS l
		SET expires_at = now() + $2 * interval '1 millisecond'
		FROM unnest($3::uuid[], $4::text[]) AS k (user_id, mode)
		WHERE l.owner = $1 AND l.user_id = k.user_id AND l.mode = k.mode AND l.expires_at > now()
		RETURNING l.user_id::text, l.mode, l.generation`,
		m.cfg.Replica, m.cfg.TTL.Milliseconds(), users, modes)
	var renewed map[Key]int64
	if err == nil {
		renewed = map[Key]int64{}
		var k Key
		var gen int64
		_, err = pgx.ForEachRow(rows, []any{&k.UserID, &k.Mode, &gen}, func() error {
			renewed[k] = gen
			return nil
		})
	}
	d := m.cfg.Now().Sub(start)
	if m.cfg.OnRenew != nil {
		m.cfg.OnRenew(d, len(renewed), err)
	}
	if err != nil {
		m.expire()
		return 0, fmt.Errorf("renew leases: %w", err)
	}
	var lost []Key
	m.mu.Lock()
	for k, was := range asked {
		h, ok := m.held[k]
		if !ok || h != was {
			continue // released, or acquired again meanwhile: judged next time
		}
		if gen, ok := renewed[k]; ok && gen == h.gen {
			if until := start.Add(m.cfg.TTL - m.cfg.Margin); until.After(h.until) {
				h.until = until
				m.held[k] = h
			}
			continue
		}
		delete(m.held, k)
		lost = append(lost, k)
	}
	m.mu.Unlock()
	m.tellLost(lost)
	return len(renewed), nil
}

// expire forgets the leases whose trust ran out (renewals kept failing).
func (m *Manager) expire() {
	now := m.cfg.Now()
	var lost []Key
	m.mu.Lock()
	for k, h := range m.held {
		if !now.Before(h.until) {
			delete(m.held, k)
			lost = append(lost, k)
		}
	}
	m.mu.Unlock()
	m.tellLost(lost)
}

func (m *Manager) tellLost(lost []Key) {
	for _, k := range lost {
		o, found, _ := m.owner(context.Background(), `user_id = $1 AND mode = $2`, k.UserID, k.Mode)
		m.cfg.Log.Warn().Str("replica", m.cfg.Replica).Str("user_id", k.UserID).Str("mode", k.Mode).Bool("live_row", found).Str("now_owner", o.Replica).
			Int64("now_generation", o.Generation).Time("expires_at", o.ExpiresAt).Time("local_now", m.cfg.Now()).
			Msg("session lease lost; the tenant's session is dropped here")
		if m.cfg.OnLost != nil {
			m.cfg.OnLost(k)
		}
	}
}
