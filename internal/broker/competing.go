package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
)

// What Ordertune does while another login (Client Portal, TWS) holds a
// user's IBKR brokerage session: the user's setting.
const (
	// CompetingTakeBack takes the session back the next time Ordertune
	// needs it (an order): the other login is signed out. The default.
	CompetingTakeBack = "take_back"
	// CompetingWait leaves the session to the other login: orders fail
	// with errs.BrokerSessionCompeting, nothing sent, until it is free.
	CompetingWait = "wait"
)

// SessionEvent is a change of who holds a user's brokerage session, as
// the cache tells the Service.
type SessionEvent struct {
	// Action is "competing" (another login holds the session and
	// Ordertune left it) or "taken_back" (Ordertune took it back).
	Action string
	// Notify reports whether the user has not been told of this episode
	// of a competing login yet.
	Notify bool
}

// CompetingSession is the data of a broker.competing_session
// notification.
type CompetingSession struct {
	Mode            Mode      `json:"mode"`
	AccountIDMasked string    `json:"account_id_masked"`
	Action          string    `json:"action"`
	OnCompeting     string    `json:"on_competing"`
	At              time.Time `json:"at"`
	Message         string    `json:"message"`
}

// errSessionInUse refuses a call while another login holds the session
// and the user chose to wait.
var errSessionInUse = errs.E(errs.BrokerSessionCompeting,
	"your IBKR session is in use by another login (Client Portal or TWS) and Ordertune waits until it is free, as set in Settings → Broker; nothing was sent")

// SessionPreference returns what Ordertune does while another login holds
// userID's brokerage session: CompetingTakeBack (the default) or
// CompetingWait.
func (s *Service) SessionPreference(ctx context.Context, userID string) (string, error) {
	var pref string
	err := s.pool.QueryRow(ctx, `SELECT on_competing FROM broker_session_prefs WHERE user_id = $1`, userID).Scan(&pref)
	if errors.Is(err, pgx.ErrNoRows) {
		return CompetingTakeBack, nil
	}
	if err != nil {
		return "", fmt.Errorf("session preference of %s: %w", userID, err)
	}
	return pref, nil
}

// SetSessionPreference sets what Ordertune does while another login holds
// userID's brokerage session; audited.
func (s *Service) SetSessionPreference(ctx context.Context, actor Actor, userID, pref string) error {
	if pref != CompetingTakeBack && pref != CompetingWait {
		return errs.Fields("invalid preference", errs.FieldError{Field: "on_competing", Message: "must be take_back or wait"})
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO broker_session_prefs (user_id, on_competing, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (user_id) DO UPDATE SET on_competing = $2, updated_at = $3`, userID, pref, s.now().UTC())
		if err != nil {
			return fmt.Errorf("set session preference of %s: %w", userID, err)
		}
		return audit.Record(ctx, tx, audit.Event{At: s.now(), UserID: userID, ActorID: actor.UserID, IP: actor.IP,
			Action: "broker.session_preference", Subject: "broker", Details: map[string]any{"on_competing": pref}})
	})
	if err != nil {
		return err
	}
	// A tenant that waited may take its session back now.
	s.cache.forgetFailure(userID)
	return nil
}

// sessionEvent records ev for userID: an audit row, and the
// broker.competing_session notification (Config.OnCompeting) when the
// user was not told of this episode yet, in one transaction. A failure is
// logged by the caller; the session's state does not depend on it.
func (s *Service) sessionEvent(ctx context.Context, userID string, conn Conn, ev SessionEvent) error {
	pref, err := s.SessionPreference(ctx, userID)
	if err != nil {
		pref = CompetingTakeBack
	}
	data := CompetingSession{Mode: conn.Mode, AccountIDMasked: MaskAccountID(conn.AccountID), Action: ev.Action,
		OnCompeting: pref, At: s.now().UTC()}
	switch {
	case ev.Action == "taken_back":
		data.Message = "Another login (Client Portal or TWS) had your IBKR session; Ordertune took it back for your order, which signed the other login out."
	case pref == CompetingWait:
		data.Message = "Another login (Client Portal or TWS) has your IBKR session. Ordertune waits: orders are not sent until you sign out of the other login."
	default:
		data.Message = "Another login (Client Portal or TWS) has your IBKR session. Ordertune takes it back at your next order, which signs the other login out."
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		err := audit.Record(ctx, tx, audit.Event{At: s.now(), UserID: userID, Action: "broker.session_" + ev.Action,
			Subject: "broker/" + string(conn.Mode), Details: map[string]any{"mode": string(conn.Mode), "on_competing": pref, "notified": ev.Notify}})
		if err != nil || !ev.Notify || s.onCompeting == nil {
			return err
		}
		return s.onCompeting(ctx, tx, userID, data)
	})
}

// heldElsewhere reports whether another login holds the brokerage session
// of sess; known is what the keep-alive last saw.
func heldElsewhere(ctx context.Context, sess *ibkr.Session, known bool) bool {
	st, err := sess.AuthStatus(ctx)
	if err != nil {
		// "No bridge": nobody holds it. Another failure says nothing new.
		return known && ibkr.KindOf(err) != ibkr.KindNoBrokerageSession
	}
	return st.Competing
}

// forgetFailure drops the user's remembered failure, so the next request
// tries again at once (a setting that caused it changed).
func (c *Cache) forgetFailure(userID string) {
	c.withCached(userID, func(t *tenant) { t.failErr, t.failUntil = nil, time.Time{} })
}
