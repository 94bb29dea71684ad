package broker

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/tick"
)

// The states of a cached session, as GET /admin/sessions shows them.
const (
	StateReady        = "ready"        // LST valid, brokerage session open, accounts queried
	StatePreparing    = "preparing"    // a handshake or re-init is running
	StateCompeting    = "competing"    // another login holds the brokerage session
	StateNoBrokerage  = "no_brokerage" // LST valid, brokerage session to be (re)opened
	StateExpired      = "expired"      // the LST expired or IBKR refused it
	StateFailed       = "failed"       // the last attempt failed; retried after a back-off
	StateDisconnected = "disconnected" // nothing cached yet
)

// SessionState is the health of one tenant's cached IBKR session. It holds
// nothing secret.
type SessionState struct {
	UserID          string     `json:"user_id"`
	Mode            Mode       `json:"mode,omitempty"`
	AccountIDMasked string     `json:"account_id_masked,omitempty"`
	State           string     `json:"state"`
	LSTExpiresAt    *time.Time `json:"lst_expires_at"`
	RenewAt         *time.Time `json:"renew_at"`
	LastTickleAt    *time.Time `json:"last_tickle_at"`
	LastUsedAt      *time.Time `json:"last_used_at"`
	Competing       bool       `json:"competing"`
	LastError       errs.Code  `json:"last_error,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// state describes t; the caller holds t.mu.
func (t *tenant) state(now time.Time) SessionState {
	st := SessionState{
		UserID: t.userID, Mode: t.conn.Mode, Competing: t.competing, LastError: t.lastErr,
		LSTExpiresAt: timePtr(t.tok.Expires), RenewAt: timePtr(t.renewAt),
		LastTickleAt: timePtr(t.lastTickle), LastUsedAt: timePtr(t.lastUsed),
	}
	if t.conn.AccountID != "" {
		st.AccountIDMasked = MaskAccountID(t.conn.AccountID)
	}
	switch {
	case t.ready(now):
		st.State = StateReady
	case t.flight != nil:
		st.State = StatePreparing
	case t.competing:
		st.State = StateCompeting
	case t.failErr != nil:
		st.State = StateFailed
	case t.tok.Value == "":
		st.State = StateDisconnected
	case t.lstBad || !now.Before(t.tok.Expires):
		st.State = StateExpired
	default:
		st.State = StateNoBrokerage
	}
	return st
}

// State returns the user's cached session state, and false when nothing is
// cached for the user.
func (c *Cache) State(userID string) (SessionState, bool) {
	var st SessionState
	ok := c.withCached(userID, func(t *tenant) { st = t.state(c.cfg.Now()) })
	return st, ok
}

// conn returns the connection of the user's cached session, and whether
// one is installed.
func (c *Cache) conn(userID string) (Conn, bool) {
	var conn Conn
	installed := false
	c.withCached(userID, func(t *tenant) { conn, installed = t.conn, t.tok.Value != "" && t.conn.AccountID != "" })
	return conn, installed
}

// withCached runs fn with the user's cached tenant locked, and reports
// whether one was cached: fn does not run otherwise. Unlike tenant, it
// never adds one.
func (c *Cache) withCached(userID string, fn func(*tenant)) bool {
	c.mu.Lock()
	t := c.tenants[userID]
	c.mu.Unlock()
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	fn(t)
	return true
}

// States returns every cached tenant's session state, by user id (GET
// /admin/sessions).
func (c *Cache) States() []SessionState {
	now := c.cfg.Now()
	ts := c.snapshot()
	out := make([]SessionState, 0, len(ts))
	for _, t := range ts {
		t.mu.Lock()
		out = append(out, t.state(now))
		t.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out
}

// StateCounts returns how many cached sessions are in each state (for
// metrics).
func (c *Cache) StateCounts() map[string]int {
	counts := map[string]int{}
	for _, st := range c.States() {
		counts[st.State]++
	}
	return counts
}

func (c *Cache) snapshot() []*tenant {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := make([]*tenant, 0, len(c.tenants))
	for _, t := range c.tenants {
		ts = append(ts, t)
	}
	return ts
}

// Run keeps the sessions of recently active tenants alive until ctx ends:
// every TickleEvery it tickles them, renews LSTs due for renewal, re-opens
// lost brokerage sessions and notes competing logins. A failing tenant or
// even a panic in one pass never stops it.
func (c *Cache) Run(ctx context.Context, log zerolog.Logger) {
	log = log.With().Str("worker", "keepalive").Logger()
	every := c.cfg.TickleEvery / 4
	if every < time.Second {
		every = c.cfg.TickleEvery
	}
	tick.Every(ctx, every, func() { c.safeSweep(ctx, log) })
}

// safeSweep runs one keep-alive pass, turning a panic into a log line so
// the supervisor lives on.
func (c *Cache) safeSweep(ctx context.Context, log zerolog.Logger) {
	defer func() {
		if r := recover(); r != nil {
			log.Error().Str("panic", fmt.Sprint(r)).Msg("broker keep-alive pass panicked; continuing")
		}
	}()
	s := c.sweep(ctx)
	if s.failed > 0 || s.competing > 0 {
		log.Warn().Int("tickled", s.tickled).Int("failed", s.failed).Int("competing", s.competing).
			Int("repairs", s.repairs).Int("evicted", s.evicted).Msg("broker keep-alive pass")
	}
}

// sweepStats counts what one keep-alive pass did.
type sweepStats struct {
	tickled, failed, competing, repairs, evicted int
	paused                                       bool // IBKR was restarting
}

// sweep is one keep-alive pass over every cached tenant. During IBKR's
// restart it does nothing: every call would fail, and the tickles after it
// find the brokerage sessions it ended and re-open them.
func (c *Cache) sweep(ctx context.Context) sweepStats {
	var st sweepStats
	now := c.cfg.Now()
	if _, restarting := c.restarting(now); restarting {
		st.paused = true
		return st
	}
	var due []*tenant
	for _, t := range c.snapshot() {
		t.mu.Lock()
		if t.flight == nil && !c.owns(t) {
			// Another replica owns the tenant now: keep nothing alive here.
			c.disown(t)
		}
		active := now.Sub(t.lastUsed) <= c.cfg.ActiveWithin
		switch {
		case t.tok.Value == "" && t.flight == nil && !active:
			c.evict(t)
			st.evicted++
		case t.tok.Value == "" || t.flight != nil:
		case !active:
			// Idle tenants are not kept alive; once the LST is gone there
			// is nothing left worth keeping in memory.
			if !now.Before(t.tok.Expires) {
				c.evict(t)
				st.evicted++
			}
		case t.competing:
			// Tell the user rather than fight: the session is taken back
			// only when the user next acts (Session re-initialises it).
			st.competing++
			if c.tickleDue(t, now) {
				due = append(due, t)
			}
		case t.lstBad || !now.Before(t.renewAt) || !t.brokerage || !t.accounts:
			if t.failErr == nil || !now.Before(t.failUntil) {
				c.startFlight(t, false)
				st.repairs++
			}
		case c.tickleDue(t, now):
			due = append(due, t)
		}
		t.mu.Unlock()
	}

	var mu sync.Mutex
	sem := make(chan struct{}, c.cfg.KeepAliveWorkers)
	var wg sync.WaitGroup
	for _, t := range due {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ok, competing := c.tickle(ctx, t)
			mu.Lock()
			st.tickled++
			if !ok {
				st.failed++
			}
			if competing {
				st.competing++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	c.evictPacers(c.cfg.Now())
	return st
}

// tickleDue reports whether t's session needs a tickle: TickleEvery after
// the last tickle or the flight that made the session ready, whichever
// was later. A new session used to be tickled at the next sweep, within
// 15 s of its handshake, brokerage session and accounts: one wasted IBKR
// call per session, thousands in a cold storm, on the account's pacer and
// the sweep's few workers. The caller holds t.mu.
func (c *Cache) tickleDue(t *tenant, now time.Time) bool {
	last := t.lastTickle
	if t.preparedAt.After(last) {
		last = t.preparedAt
	}
	return now.Sub(last) >= c.cfg.TickleEvery
}

// evict removes t from the cache when it is still the user's tenant. The
// caller holds t.mu.
func (c *Cache) evict(t *tenant) {
	c.mu.Lock()
	if c.tenants[t.userID] == t {
		delete(c.tenants, t.userID)
	}
	c.mu.Unlock()
	t.dropped = true
	t.tok = ibkr.LiveSessionToken{}
}

// tickle keeps one session alive and acts on what IBKR says: a competing
// login is noted, a dead brokerage session or a refused LST is repaired.
func (c *Cache) tickle(ctx context.Context, t *tenant) (ok, competing bool) {
	t.mu.Lock()
	if t.tok.Value == "" || !c.owns(t) {
		t.mu.Unlock()
		return true, false
	}
	tok := t.tok.Value
	pe := c.acquirePacer(t.conn.AccountID, 0)
	sess, err := c.session(t, pe)
	t.mu.Unlock()
	if err != nil {
		c.releasePacer(pe)
		return false, false
	}
	tctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	res, err := sess.Tickle(tctx)
	cancel()
	c.releasePacer(pe)

	now := c.cfg.Now()
	var ev pendingEvent
	defer c.tell(ctx, t.userID, &ev) // after t.mu is released (deferred below)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok.Value != tok || t.dropped {
		return true, false
	}
	t.lastTickle = now
	if err == nil {
		t.competing, t.lastErr, t.competingNotified = false, "", false
		return true, false
	}
	kind := ibkr.KindOf(err)
	t.lastErr = errs.Code(kind.Code())
	switch {
	case kind == ibkr.KindNoBrokerageSession && (res.AuthStatus.Competing || res.Collision):
		if !t.competingNotified {
			ev = pendingEvent{&SessionEvent{Action: "competing", Notify: true}, t.conn}
			t.competingNotified = true
		}
		t.competing = true
		return false, true
	case kind == ibkr.KindNoBrokerageSession:
		t.brokerage, t.accounts = false, false
		c.startFlight(t, false)
	case kind == ibkr.KindTokenExpired:
		t.lstBad = true
		c.startFlight(t, false)
	}
	return false, false
}

// restarting reports whether IBKR is in a restart window at now, and until
// when.
func (c *Cache) restarting(now time.Time) (time.Time, bool) {
	if c.cfg.Maintenance == nil {
		return time.Time{}, false
	}
	return c.cfg.Maintenance(now)
}

// pendingEvent is a session event to tell once the tenant's lock is
// released, with the connection it concerns; none when ev is nil.
type pendingEvent struct {
	ev   *SessionEvent
	conn Conn
}

// tell hands e to the cache's session-event hook, if there is one. It is
// deferred before the tenant's lock is taken, so that it runs after the
// lock is released (and, in a flight, before the waiters go on).
func (c *Cache) tell(ctx context.Context, userID string, e *pendingEvent) {
	if e.ev != nil && c.onSessionEvent != nil {
		c.onSessionEvent(ctx, userID, e.conn, *e.ev)
	}
}
