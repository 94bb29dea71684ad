package broker

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
)

// flight is one handshake-and-init in progress; done closes when it ends
// with err set when it failed.
type flight struct {
	done chan struct{}
	err  error
	// takeBack reports whether a caller that may take the session back
	// from another login (trading.TakesBack) started or joined the flight.
	// Without one, the flight opens the brokerage session only if it is
	// free, and ends with errLeftToOtherLogin if it is not: an order that
	// joins later then starts a flight of its own.
	takeBack atomic.Bool
}

// errDropped tells waiters that the tenant was invalidated while their
// flight ran: its result belongs to replaced credentials.
var errDropped = errors.New("broker session: invalidated while being prepared")

// errLeftToOtherLogin refuses a call that may not take the session back
// (trading.WithoutTakeBack) while another login holds it.
var errLeftToOtherLogin = errs.E(errs.BrokerSessionCompeting,
	"your IBKR session is in use by another login (Client Portal or TWS); Ordertune signs that login out only to place an order, as set in Settings → Broker")

// startFlight returns the tenant's flight, starting one when none runs;
// takeBack says whether the caller may take the session back from another
// login. The caller holds t.mu. The flight runs detached from any one
// caller's context, so a caller giving up does not fail the others.
func (c *Cache) startFlight(t *tenant, takeBack bool) *flight {
	f := t.flight
	switch {
	case f == nil:
		f = &flight{done: make(chan struct{})}
		f.takeBack.Store(takeBack)
		t.flight = f
		go c.prepare(t, f)
	case takeBack:
		f.takeBack.Store(true)
	}
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
	fresh, waiting, takenBack, left := false, false, false, false
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
		if !brokerage {
			var o brokerageOpening
			o, err = c.openBrokerage(ctx, t.userID, cur.sess, f.takeBack.Load(), fresh, wasCompeting)
			waiting, left, takenBack = o.waiting, o.left, o.takenBack
			if waiting || left {
				break
			}
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
	if waiting || left {
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
		if unreachable(err) || servedElsewhere(err) || left {
			// Nothing was refused: IBKR was not reached (or the session
			// was left to another login, which an order takes back). The
			// next request tries again at once rather than fail from the
			// cache while IBKR may be back (the flight still makes one
			// handshake at a time).
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

// brokerageOpening is how a flight's opening of the brokerage session
// went, besides its error.
type brokerageOpening struct {
	// waiting: another login holds the session and the user chose to wait.
	waiting bool
	// left: another login holds the session and no caller of the flight
	// may take it back (trading.WithoutTakeBack).
	left bool
	// takenBack: another login held the session; it was taken back.
	takenBack bool
}

// openBrokerage opens the brokerage session on sess for userID's flight.
// Another login (Client Portal, TWS) may hold it. A flight that may not take
// it back opens it only if it is free (compete:false). Otherwise the user's
// setting decides: wait, or take it back. On a token that had a session
// IBKR is asked first who holds it (known is what the keep-alive last saw);
// a fresh token knows nothing of that, so the session is opened only if it
// is free, and IBKR's answer decides.
func (c *Cache) openBrokerage(ctx context.Context, userID string, sess *ibkr.Session, takeBack, fresh, known bool) (brokerageOpening, error) {
	if !takeBack {
		st, err := sess.InitBrokerageIfFree(ctx)
		if err != nil && st.Competing {
			return brokerageOpening{left: true}, errLeftToOtherLogin
		}
		return brokerageOpening{}, err
	}
	if c.competingPref == nil {
		_, err := sess.InitBrokerage(ctx)
		return brokerageOpening{}, err
	}
	var held bool
	if fresh {
		st, err := sess.InitBrokerageIfFree(ctx)
		if err == nil {
			return brokerageOpening{}, nil
		}
		if !st.Competing && ibkr.KindOf(err) != ibkr.KindNoBrokerageSession {
			return brokerageOpening{}, err
		}
		// Not opened: held by another login, or an answer that says
		// neither, which the init below settles as it always did.
		held = st.Competing
	} else {
		held = heldElsewhere(ctx, sess, known)
	}
	var o brokerageOpening
	if held {
		pref, err := c.competingPref(ctx, userID)
		if err != nil {
			return o, err
		}
		if pref == CompetingWait {
			return brokerageOpening{waiting: true}, errSessionInUse
		}
		o.takenBack = true
	}
	_, err := sess.InitBrokerage(ctx)
	return o, err
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
