package broker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/trading"
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
	return t.tokenUsable(now) && t.brokerage && t.accounts && !t.competing
}

// tokenUsable reports whether t's live session token can sign a request
// now. The caller holds t.mu.
func (t *tenant) tokenUsable(now time.Time) bool {
	return t.tok.Value != "" && !t.lstBad && now.Before(t.tok.Expires)
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
	takeBack, portfolio := trading.TakesBack(ctx), portfolioOnly(ctx)
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
				c.startFlight(t, takeBack) // renew in the background; this LST still works
			}
			return c.handOut(t, hold)
		}
		if t.competing && !takeBack && t.flight == nil {
			// Another login holds the brokerage session, and this call
			// may not take it back: only the user's next order does. A
			// call to the portfolio, which the live session token serves
			// without a brokerage session, runs all the same.
			if portfolio && t.tokenUsable(now) {
				return c.handOut(t, hold)
			}
			t.mu.Unlock()
			return nil, Conn{}, nil, errLeftToOtherLogin
		}
		if t.failErr != nil && now.Before(t.failUntil) {
			err := t.failErr
			t.mu.Unlock()
			return nil, Conn{}, nil, err
		}
		f := c.startFlight(t, takeBack)
		t.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, Conn{}, nil, errs.Wrap(ctx.Err(), errs.BrokerUnavailable, "the IBKR session is not ready yet")
		}
		switch {
		case errors.Is(f.err, errLeftToOtherLogin) && takeBack:
			// The flight was not this caller's to take the session
			// back: the next round starts one that is.
		case portfolio && !takeBack && (errors.Is(f.err, errLeftToOtherLogin) || errors.Is(f.err, errSessionInUse)):
			// Another login holds the brokerage session, which this call
			// does not need: the next round serves the portfolio on the
			// live session token.
		case f.err != nil && !errors.Is(f.err, errDropped):
			return nil, Conn{}, nil, f.err
		}
		// Ready now (or invalidated meanwhile): the next round hands out
		// the session, or prepares the new credentials.
	}
	return nil, Conn{}, nil, errs.E(errs.BrokerUnavailable, "the IBKR connection changed while the session was being prepared; try again")
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

// handOut returns a session on t's token, holding the account's pacer for
// hold. The caller holds t.mu; handOut releases it.
func (c *Cache) handOut(t *tenant, hold time.Duration) (*ibkr.Session, Conn, *pacerEntry, error) {
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

// withPortfolioOnly marks a Do whose calls are all to the portfolio
// (/portfolio/...), which IBKR serves on the live session token without a
// brokerage session: while another login holds that session, such a call
// that may not take it back (trading.WithoutTakeBack) still runs.
func withPortfolioOnly(ctx context.Context) context.Context {
	return context.WithValue(ctx, portfolioOnlyKey{}, true)
}

func portfolioOnly(ctx context.Context) bool {
	yes, _ := ctx.Value(portfolioOnlyKey{}).(bool)
	return yes
}

type portfolioOnlyKey struct{}

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
