package broker

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
)

// loadFunc loads a user's active connection with its secrets decrypted
// and parsed; the cache drops the credentials right after the handshake.
// known is the access token secret an earlier load decrypted for the user
// (zero when none): a load whose sealed columns are unchanged uses it
// rather than decrypt again, and returns the secret to remember.
type loadFunc func(ctx context.Context, userID string, known knownSecret) (Conn, *ibkr.Credentials, knownSecret, error)

// Cache keeps each tenant's IBKR session ready, in memory only: the live
// session token and its expiry, the brokerage session, whether accounts
// were queried, the last tickle and a competing login. One handshake per
// tenant runs at a time, however many requests wait for it. It is safe for
// concurrent use.
//
// A tenant's entry holds the LST and what signing needs, not an
// ibkr.Session: each Session call hands out a fresh ibkr.Session on the
// cached token, paced by the account's shared Pacer. Pacers live only while
// an account's requests flow (a pacer idle for longer than its slowest
// limit is the same as a new one), which keeps 10,000 warm tenants small.
type Cache struct {
	cfg  CacheConfig
	opts ibkr.Options
	load loadFunc
	// suppress are the reply questions suppressed in every new brokerage
	// session, after accounts are queried: Config.AllowedQuestions.
	suppress []string
	// suppressFor, when set, returns a user's questions to suppress
	// instead (an admin may override the platform's list per user).
	suppressFor func(ctx context.Context, userID string) ([]string, error)
	// competingPref, when set, returns what to do while another login
	// holds a user's brokerage session (CompetingTakeBack or
	// CompetingWait); nil takes it back without asking who holds it.
	competingPref func(ctx context.Context, userID string) (string, error)
	// onSessionEvent, when set, is told that another login holds a
	// user's session, or that Ordertune took it back. It is called
	// without locks held.
	onSessionEvent func(ctx context.Context, userID string, conn Conn, ev SessionEvent)

	mu      sync.Mutex
	tenants map[string]*tenant
	// pacers are shared by every session of one IBKR account, across
	// renewals, so a new LST never resets the account's request budget.
	pacers map[string]*pacerEntry

	// flights holds a token per flight running (CacheConfig.MaxFlights).
	flights chan struct{}

	handshakes counter
	// decrypts counts handshakes that decrypted the access token secret
	// (none was known, or the connection changed).
	decrypts counter
}

// counter counts events; tests and metrics read it.
type counter struct {
	mu sync.Mutex
	n  int64
}

func (c *counter) add() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

func (c *counter) load() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// tenant is one user's cached session; mu guards every field below it.
type tenant struct {
	userID string

	mu      sync.Mutex
	dropped bool // invalidated: no flight may install a session here
	tok     ibkr.LiveSessionToken
	conn    Conn
	// accessToken and realm are what signing needs besides the LST; they
	// are not secrets.
	accessToken, realm string

	// gen is the generation of the session lease the LST was made under
	// (0 without leases): the session serves only while this replica
	// holds that very lease.
	gen       int64
	renewAt   time.Time
	lstBad    bool // IBKR refused the LST (401): make a new one
	brokerage bool // the brokerage session is open
	accounts  bool // accounts were queried in this brokerage session
	competing bool // another login holds the brokerage session
	// competingNotified reports whether the user was told of the current
	// episode of a competing login (broker.competing_session).
	competingNotified bool
	lastTickle        time.Time
	// preparedAt is when a flight's calls (handshake, brokerage session,
	// accounts) last succeeded: the session was alive at IBKR then, so
	// the next tickle is due a TickleEvery after it (tickleDue).
	preparedAt time.Time
	lastUsed   time.Time
	lastErr    errs.Code
	lastRepair time.Time // when a 401 last marked the LST bad (RepairEvery)

	failErr   error
	failUntil time.Time
	flight    *flight
	// known is the access token secret the last successful handshake used.
	known knownSecret
}

// flight is one handshake-and-init in progress; done closes when it ends
// with err set when it failed.
type flight struct {
	done chan struct{}
	err  error
}

// errDropped tells waiters that the tenant was invalidated while their
// flight ran: its result belongs to replaced credentials.
var errDropped = errors.New("broker session: invalidated while being prepared")

// newCache returns a cache that loads credentials with load, talks to IBKR
// with opts (its Pacer is ignored: the cache keeps one per account) and
// suppresses the suppress questions in each brokerage session.
func newCache(cfg CacheConfig, opts ibkr.Options, load loadFunc, suppress []string) *Cache {
	cfg = cfg.withDefaults()
	return &Cache{
		cfg:      cfg,
		flights:  make(chan struct{}, cfg.MaxFlights),
		opts:     opts,
		load:     load,
		suppress: suppress,
		tenants:  map[string]*tenant{},
		pacers:   map[string]*pacerEntry{},
	}
}

// Handshakes returns how many live session token handshakes the cache has
// started since it was made.
func (c *Cache) Handshakes() int64 { return c.handshakes.load() }

// SecretDecrypts returns how many of those handshakes decrypted the access
// token secret; the others reused the one a tenant's earlier handshake
// decrypted.
func (c *Cache) SecretDecrypts() int64 { return c.decrypts.load() }

func (c *Cache) tenant(userID string) *tenant {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.tenants[userID]
	if t == nil {
		t = &tenant{userID: userID}
		c.tenants[userID] = t
	}
	return t
}

// session builds an ibkr.Session on t's cached token. The caller holds t.mu.
func (c *Cache) session(t *tenant, pe *pacerEntry) (*ibkr.Session, error) {
	opts := c.opts
	opts.Pacer = pe.p
	return ibkr.ResumeSession(opts, t.conn.ConsumerKey, t.accessToken, t.realm, t.tok)
}

// ready reports whether t's session can serve a request now: a valid LST,
// an open brokerage session that no other login holds, and accounts
// queried. The caller holds t.mu.
func (t *tenant) ready(now time.Time) bool {
	return t.tok.Value != "" && !t.lstBad && now.Before(t.tok.Expires) && t.brokerage && t.accounts && !t.competing
}

// Session returns the user's IBKR session for the active connection, ready
// for orders: live session token valid, brokerage session open, accounts
// queried. Concurrent callers for a cold tenant share one handshake. A
// failure is remembered for CacheConfig.FailureBackoff, so a broken
// connection is not hammered. The error is an *errs.Error with a broker
// code (BrokerNotConnected when no connection is saved).
//
// Use the session for one unit of work (a few minutes at most) and call
// Session again for the next: the account's pacer is held for that long,
// and a renewed LST is picked up. Prefer Do, which also repairs the
// session when IBKR refuses it.
func (c *Cache) Session(ctx context.Context, userID string) (*ibkr.Session, Conn, error) {
	s, conn, pe, err := c.acquire(ctx, userID, sessionLease)
	if err != nil {
		return nil, Conn{}, err
	}
	c.releasePacer(pe)
	return s, conn, nil
}

// acquire is Session holding the account's pacer for hold; the caller
// releases pe.
func (c *Cache) acquire(ctx context.Context, userID string, hold time.Duration) (*ibkr.Session, Conn, *pacerEntry, error) {
	for range 5 {
		t := c.tenant(userID)
		now := c.cfg.Now()
		t.mu.Lock()
		t.lastUsed = now
		if t.tok.Value != "" && !c.owns(t) {
			// The lease moved on: another replica may have superseded
			// this LST already. Never act on it; a new one needs the lease.
			c.disown(t)
		}
		if t.ready(now) {
			if !now.Before(t.renewAt) {
				c.startFlight(t) // renew in the background; this LST still works
			}
			pe := c.acquirePacer(t.conn.AccountID, hold)
			s, err := c.session(t, pe)
			conn := t.conn
			t.mu.Unlock()
			if err != nil {
				c.releasePacer(pe)
				return nil, Conn{}, nil, errs.Wrap(err, errs.Internal, "")
			}
			return s, conn, pe, nil
		}
		if t.failErr != nil && now.Before(t.failUntil) {
			err := t.failErr
			t.mu.Unlock()
			return nil, Conn{}, nil, err
		}
		f := c.startFlight(t)
		t.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, Conn{}, nil, errs.Wrap(ctx.Err(), errs.BrokerUnavailable, "the IBKR session is not ready yet")
		}
		if f.err != nil && !errors.Is(f.err, errDropped) {
			return nil, Conn{}, nil, f.err
		}
		// Ready now (or invalidated meanwhile): the next round hands out
		// the session, or prepares the new credentials.
	}
	return nil, Conn{}, nil, errs.E(errs.BrokerUnavailable, "the IBKR connection changed while the session was being prepared; try again")
}

// startFlight returns the tenant's flight, starting one when none runs.
// The caller holds t.mu. The flight runs detached from any one caller's
// context, so a caller giving up does not fail the others.
func (c *Cache) startFlight(t *tenant) *flight {
	if t.flight != nil {
		return t.flight
	}
	f := &flight{done: make(chan struct{})}
	t.flight = f
	go c.prepare(t, f)
	return f
}

// prepared is a session being made ready by a flight.
type prepared struct {
	sess               *ibkr.Session
	pe                 *pacerEntry
	gen                int64 // the session lease's generation
	conn               Conn
	accessToken, realm string
}

func (c *Cache) release(p *prepared) {
	if p != nil && p.pe != nil {
		c.releasePacer(p.pe)
		p.pe = nil
	}
}

// prepare makes t's session ready: a handshake when there is no valid LST
// (or it is due for renewal), then the brokerage session, then accounts.
// A 401 on a cached LST triggers one new handshake. It waits its turn
// among CacheConfig.MaxFlights first.
func (c *Cache) prepare(t *tenant, f *flight) {
	c.flights <- struct{}{}
	defer func() { <-c.flights }()
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.CallTimeout)
	defer cancel()
	var restored *SessionRestored
	defer func() { c.sessionRestored(restored) }() // after the waiters went on
	defer close(f.done)

	now := c.cfg.Now()
	t.mu.Lock()
	why := c.restoreReason(t, now)
	wasCompeting := t.competing
	origTok := t.tok.Value
	needLST := t.tok.Value == "" || t.lstBad || !now.Before(t.renewAt) || !now.Before(t.tok.Expires) || !c.owns(t)
	brokerage := t.brokerage && !t.competing && !needLST
	accounts := t.accounts && brokerage
	var cur *prepared
	if !needLST {
		cur = &prepared{conn: t.conn, accessToken: t.accessToken, realm: t.realm, gen: t.gen}
		cur.pe = c.acquirePacer(t.conn.AccountID, 0)
		var err error
		if cur.sess, err = c.session(t, cur.pe); err != nil {
			needLST = true
		}
	}
	t.mu.Unlock()
	defer func() { c.release(cur) }()

	var err error
	fresh, waiting, takenBack := false, false, false
	// calls says the flight talks to IBKR; when it succeeds, the session
	// was alive there just now, as a tickle would have found (preparedAt).
	calls := needLST || !brokerage || !accounts
	for attempt := 0; ; attempt++ {
		if needLST {
			c.release(cur)
			cur, err = c.handshake(ctx, t)
			if err != nil {
				break
			}
			fresh = true
			brokerage, accounts = false, false
		}
		if !brokerage && !fresh && c.competingPref != nil && heldElsewhere(ctx, cur.sess, wasCompeting) {
			// Re-opening the session on a token that had one: another
			// login may hold it, and the user decides whether to take it.
			var pref string
			if pref, err = c.competingPref(ctx, t.userID); err == nil && pref == CompetingWait {
				waiting, err = true, errSessionInUse
				break
			}
			takenBack = err == nil
		}
		if err == nil && !brokerage {
			_, err = cur.sess.InitBrokerage(ctx)
			if err == nil {
				brokerage = true
				accounts = false
			}
		}
		if err == nil && !accounts {
			var list ibkr.AccountList
			list, err = cur.sess.Accounts(ctx)
			if err == nil && !list.Has(cur.conn.AccountID) {
				err = errs.E(errs.BrokerAccountNotFound, "IBKR does not list account %s for this login; run Test Connection", MaskAccountID(cur.conn.AccountID))
			}
			suppress := c.suppress
			if err == nil && c.suppressFor != nil {
				suppress, err = c.suppressFor(ctx, t.userID)
			}
			if err == nil && len(suppress) > 0 {
				// Once per brokerage session, so known questions do not
				// interrupt an order.
				err = cur.sess.SuppressQuestions(ctx, suppress...)
			}
			accounts = err == nil
		}
		// A cached LST that IBKR no longer accepts (it expired early, or
		// IBKR restarted) gets exactly one new handshake.
		if err != nil && attempt == 0 && !needLST && ibkr.KindOf(err) == ibkr.KindTokenExpired {
			needLST, why = true, RestoredRepair
			continue
		}
		break
	}

	now = c.cfg.Now()
	var ev pendingEvent
	defer c.tell(ctx, t.userID, &ev) // after t.mu is released (deferred below)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flight = nil
	if t.dropped {
		f.err = errDropped
		return
	}
	if waiting {
		t.competing = true
		ev = pendingEvent{&SessionEvent{Action: "competing", Notify: !t.competingNotified}, t.conn}
		t.competingNotified = true
	}
	if err != nil {
		f.err = asBrokerError(err)
		t.lastErr = errs.CodeOf(f.err)
		switch {
		case fresh:
			// The new LST supersedes the old one at IBKR: keep it, so the
			// next try needs no new handshake.
			c.install(t, cur)
			t.brokerage, t.accounts = brokerage, accounts
		case needLST && origTok != "" && t.tok.Value == origTok && t.ready(now):
			// A renewal handshake failed while the current LST still
			// works: keep serving it and retry after the back-off.
			t.renewAt = now.Add(c.cfg.FailureBackoff)
			f.err = nil
			return
		case origTok != "" && t.tok.Value == origTok:
			t.brokerage, t.accounts = brokerage, accounts
		}
		t.failErr, t.failUntil = f.err, now.Add(c.cfg.FailureBackoff)
		if unreachable(err) || servedElsewhere(err) {
			// Nothing was refused: IBKR was not reached. The next request
			// tries again at once rather than fail from the cache while
			// IBKR may be back (the flight still makes one handshake at a
			// time).
			t.failUntil = now
		}
		return
	}
	if fresh {
		c.install(t, cur)
	}
	t.brokerage, t.accounts, t.competing = true, true, false
	t.failErr, t.lastErr = nil, ""
	if calls {
		t.preparedAt = now
	}
	if takenBack {
		ev = pendingEvent{&SessionEvent{Action: "taken_back", Notify: !t.competingNotified}, t.conn}
		why = RestoredTakenBack
	}
	t.competingNotified = false
	if why != "" {
		restored = &SessionRestored{Conn: t.conn, Reason: why}
	}
}

// unreachable reports whether err says IBKR was not reached at all (no
// answer: connection refused or reset, a timeout), as opposed to an answer
// that refused the session (credentials, consumer, account).
func unreachable(err error) bool {
	var ie *ibkr.Error
	if errors.As(err, &ie) {
		return ie.Kind == ibkr.KindUnavailable && ie.Status == 0
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne)
}

// install makes p's token the tenant's. The caller holds t.mu.
func (c *Cache) install(t *tenant, p *prepared) {
	t.tok, t.conn, t.accessToken, t.realm, t.gen = p.sess.Token(), p.conn, p.accessToken, p.realm, p.gen
	t.renewAt, t.lstBad = c.renewAt(t.tok.Expires), false
	t.brokerage, t.accounts = false, false
}

// renewAt picks when to renew an LST expiring at exp: RenewBefore ahead,
// plus a random part of RenewJitter, but never in the past of half its
// life (a short-lived LST still gets used).
func (c *Cache) renewAt(exp time.Time) time.Time {
	now := c.cfg.Now()
	at := exp.Add(-c.cfg.RenewBefore - c.cfg.Jitter(c.cfg.RenewJitter))
	if half := now.Add(exp.Sub(now) / 2); at.Before(half) {
		at = half
	}
	return at
}

// handshake loads the user's credentials, runs the LST handshake and drops
// the decrypted keys at once. The result holds the account's pacer.
func (c *Cache) handshake(ctx context.Context, t *tenant) (*prepared, error) {
	t.mu.Lock()
	known := knownSecret{of: t.known.of, secret: bytes.Clone(t.known.secret)}
	t.mu.Unlock()
	conn, creds, next, err := c.load(ctx, t.userID, known)
	reused := err == nil && known.matches(next.of)
	known.wipe()
	if err != nil {
		return nil, err
	}
	if !reused {
		c.decrypts.add()
	}
	p := &prepared{conn: conn, accessToken: creds.AccessToken, realm: creds.Realm}
	// Only the lease's owner may hand-shake: a second token would
	// supersede the owner's at IBKR.
	if p.gen, err = c.lease(ctx, t.userID, conn.Mode); err != nil {
		dropCredentials(creds)
		return nil, err
	}
	p.pe = c.acquirePacer(conn.AccountID, 0)
	opts := c.opts
	opts.Pacer = p.pe.p
	c.handshakes.add()
	p.sess, err = ibkr.Handshake(ctx, opts, creds)
	dropCredentials(creds)
	if c.cfg.OnHandshake != nil {
		result := "ok"
		if err != nil {
			result = string(ibkr.KindOf(err))
			if result == "" {
				result = "error"
			}
		}
		c.cfg.OnHandshake(result)
	}
	if err != nil {
		next.wipe()
		c.release(p)
		return nil, err
	}
	t.mu.Lock()
	if t.dropped {
		next.wipe()
	} else {
		t.known.wipe()
		t.known = next
	}
	t.mu.Unlock()
	return p, nil
}

// asBrokerError gives an IBKR failure its broker code, keeping the detail
// as the (logged, never shown) cause.
func asBrokerError(err error) error {
	if e := errs.As(err); e != nil {
		return err
	}
	if ibkr.KindOf(err) == "" {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return errs.Wrap(err, errs.BrokerUnavailable, "IBKR did not answer in time")
		}
		return errs.Wrap(err, errs.Internal, "")
	}
	code, msg, _ := ibkr.Explain(err)
	e := errs.Wrap(err, code, msg)
	var ie *ibkr.Error
	if errors.As(err, &ie) {
		e.RetryAfter = ie.RetryAfter
	}
	return e
}

// Invalidate drops the user's cached session at once: credentials changed,
// were deleted, or the active mode changed. A handshake in flight finishes
// but its session is thrown away.
func (c *Cache) Invalidate(userID string) {
	c.mu.Lock()
	t := c.tenants[userID]
	delete(c.tenants, userID)
	c.mu.Unlock()
	if t == nil {
		return
	}
	t.mu.Lock()
	t.dropped = true
	t.tok = ibkr.LiveSessionToken{}
	t.known.wipe()
	t.mu.Unlock()
	c.releaseLeases(userID)
}

// Report tells the cache what IBKR answered a call on sess (from Session
// or Do), so the next Session call repairs it: KindTokenExpired (a 401)
// makes a new LST, KindNoBrokerageSession ("no bridge", authenticated
// false) re-initialises the brokerage session, KindAccountsNotQueried
// queries accounts again. Reports about an LST the cache no longer holds
// are ignored.
func (c *Cache) Report(userID string, sess *ibkr.Session, kind ibkr.Kind) {
	c.mu.Lock()
	t := c.tenants[userID]
	c.mu.Unlock()
	if t == nil || sess == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok.Value == "" || sess.Token().Value != t.tok.Value {
		return
	}
	switch kind {
	case ibkr.KindTokenExpired:
		now := c.cfg.Now()
		if !t.lastRepair.IsZero() && now.Sub(t.lastRepair) < c.cfg.RepairEvery {
			// Over the tenant's handshake budget: the token was just
			// made anew, so IBKR refuses the request, not the token.
			t.lastErr = errs.Code(kind.Code())
			return
		}
		t.lstBad, t.lastRepair = true, now
	case ibkr.KindNoBrokerageSession:
		t.brokerage, t.accounts = false, false
	case ibkr.KindAccountsNotQueried:
		t.accounts = false
	default:
		return
	}
	t.lastErr = kind.Code()
}

// Do runs fn with the user's ready session. When fn fails because IBKR
// refused the LST (401), lost the brokerage session ("no bridge") or wants
// accounts queried, the session is repaired and fn runs once more: IBKR
// refused those requests before acting on them, so repeating is safe.
func (c *Cache) Do(ctx context.Context, userID string, fn func(ctx context.Context, s *ibkr.Session, conn Conn) error) error {
	acquire := func(ctx context.Context) (*ibkr.Session, Conn, func(), error) {
		s, conn, pe, err := c.acquire(ctx, userID, 0)
		if err != nil {
			return nil, Conn{}, nil, err
		}
		return s, conn, func() { c.releasePacer(pe) }, nil
	}
	report := func(s *ibkr.Session, kind ibkr.Kind) { c.Report(userID, s, kind) }
	return Repairing(ctx, acquire, report, fn)
}

// Repairing is Do for any source of sessions: it runs fn on a session from
// acquire (releasing it after), and when IBKR refused the session (a 401,
// "no bridge", accounts not queried) it reports the refusal, so that the
// next acquire repairs the session, and runs fn once more. It is the one
// place that decides which refusals are repaired and repeated.
func Repairing(ctx context.Context, acquire func(context.Context) (*ibkr.Session, Conn, func(), error),
	report func(*ibkr.Session, ibkr.Kind), fn func(ctx context.Context, s *ibkr.Session, conn Conn) error) error {
	for attempt := 0; ; attempt++ {
		s, conn, release, err := acquire(ctx)
		if err != nil {
			return err
		}
		err = fn(ctx, s, conn)
		release()
		switch kind := ibkr.KindOf(err); kind {
		case ibkr.KindTokenExpired, ibkr.KindNoBrokerageSession, ibkr.KindAccountsNotQueried:
			report(s, kind)
			if attempt == 0 {
				continue
			}
		}
		return err
	}
}

// AccountID returns the account id of the user's active connection, from
// the ready session (making it ready if needed).
func (c *Cache) AccountID(ctx context.Context, userID string) (string, error) {
	_, conn, err := c.Session(ctx, userID)
	if err != nil {
		return "", err
	}
	return conn.AccountID, nil
}
