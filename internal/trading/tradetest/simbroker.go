// Package tradetest runs the trading feature against real parts: a Broker
// that makes real IBKR sessions (handshake, brokerage session, accounts,
// question suppression) against the IBKR simulator over HTTP, and fixtures
// that put a simulator, a fresh PostgreSQL database and users together.
package tradetest

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/trading"
)

// SimBroker is a trading.Broker for users linked to simulator consumers:
// broker.Orders (the production code between trading and the session
// cache) on top of a small session source of its own. It caches one
// session per user, makes it once at a time (single flight), and drops it
// when the session was refused (the token expired, the brokerage session
// is gone), so that the next call makes a new one.
type SimBroker struct {
	*broker.Orders

	base     string
	client   *http.Client
	suppress []string
	limits   ibkr.PacerLimits

	mu    sync.Mutex
	users map[string]*simUser
}

type simUser struct {
	creds   *ibkr.Credentials
	account trading.Account
	pacer   *ibkr.Pacer

	mu   sync.Mutex // one handshake at a time
	sess *ibkr.Session
	// handshakes counts live session tokens made, for tests.
	handshakes int
}

// SimBrokerOptions configures a SimBroker.
type SimBrokerOptions struct {
	// BaseURL is the simulator's API base, http://HOST:PORT/v1/api.
	BaseURL string
	// HTTPClient sends the requests; nil means a client without timeout.
	HTTPClient *http.Client
	// Questions are the allowlisted reply questions, suppressed at
	// brokerage-session start and confirmed on orders; nil means
	// broker.DefaultAllowedQuestions.
	Questions []string
	// NoSuppress leaves the questions unsuppressed at session start, so
	// that IBKR asks them and the orders confirm them.
	NoSuppress bool
	// Limits pace each session; zero means IBKR's defaults.
	Limits ibkr.PacerLimits
}

// NewSimBroker returns a SimBroker.
func NewSimBroker(o SimBrokerOptions) *SimBroker {
	c := o.HTTPClient
	if c == nil {
		// Keep connections to the simulator open for every concurrent
		// caller; the default of two idle connections per host would open
		// a new TCP connection for most requests under load.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 256
		c = &http.Client{Transport: tr}
	}
	questions := o.Questions
	if questions == nil {
		questions = broker.DefaultAllowedQuestions()
	}
	b := &SimBroker{base: o.BaseURL, client: c, limits: o.Limits, users: map[string]*simUser{}}
	if !o.NoSuppress {
		b.suppress = questions
	}
	b.Orders = broker.NewOrders(b, questions)
	return b
}

// Link connects userID to the simulator consumer of creds.
func (b *SimBroker) Link(userID string, uc ibkrsim.UserCredentials) error {
	creds, err := ibkr.ParseCredentials(ibkr.CredentialsInput{
		ConsumerKey: uc.ConsumerKey, AccessToken: uc.AccessToken, AccessTokenSecret: uc.AccessTokenSecret,
		SignaturePrivateKeyPEM: uc.SignaturePrivateKeyPEM, EncryptionPrivateKeyPEM: uc.EncryptionPrivateKeyPEM,
		DHPrimeHex: uc.DHPrimeHex, Realm: uc.Realm, AccountID: uc.AccountID,
	})
	if err != nil {
		return fmt.Errorf("link %s: %w", userID, err)
	}
	mode := trading.Live
	if creds.IsPaper() {
		mode = trading.Paper
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.users[userID] = &simUser{
		creds:   creds,
		account: trading.Account{Mode: mode, ID: creds.AccountID, Masked: mask(creds.AccountID)},
		pacer:   ibkr.NewPacerWith(ibkr.PacerConfig{Limits: b.limits}),
	}
	return nil
}

func mask(id string) string {
	if len(id) <= 4 {
		return "•••"
	}
	prefix := "U"
	if len(id) > 2 && id[:2] == "DU" {
		prefix = "DU"
	}
	return prefix + "•••" + id[len(id)-4:]
}

func (b *SimBroker) user(userID string) (*simUser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.users[userID]
	if u == nil {
		return nil, errs.E(errs.BrokerNotConnected, "no broker connection; add one in Settings → Broker")
	}
	return u, nil
}

// ActiveAccount implements broker.Sessions and trading.Broker.
func (b *SimBroker) ActiveAccount(_ context.Context, userID string) (trading.Account, error) {
	u, err := b.user(userID)
	if err != nil {
		return trading.Account{}, err
	}
	return u.account, nil
}

// Conn is a user's ready session and its account.
type Conn struct {
	Session *ibkr.Session
	Account trading.Account
}

// Session returns the user's ready session, making one when none is
// cached: the LST handshake, ssodh/init, the accounts query and the
// suppression of the allowlisted questions.
func (b *SimBroker) Session(ctx context.Context, userID string) (Conn, error) {
	u, err := b.user(userID)
	if err != nil {
		return Conn{}, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.sess != nil {
		return Conn{Session: u.sess, Account: u.account}, nil
	}
	opts := ibkr.Options{BaseURL: b.base, HTTPClient: b.client, Pacer: u.pacer}
	sess, err := ibkr.Handshake(ctx, opts, u.creds)
	if err != nil {
		return Conn{}, err
	}
	u.handshakes++
	if _, err := sess.InitBrokerage(ctx); err != nil {
		return Conn{}, err
	}
	if _, err := sess.Accounts(ctx); err != nil {
		return Conn{}, err
	}
	if len(b.suppress) > 0 {
		if err := sess.SuppressQuestions(ctx, b.suppress...); err != nil {
			return Conn{}, err
		}
	}
	u.sess = sess
	return Conn{Session: sess, Account: u.account}, nil
}

// Warm implements broker.Sessions: the user's session is made when none
// is cached.
func (b *SimBroker) Warm(ctx context.Context, userID string) error {
	_, err := b.Session(ctx, userID)
	return err
}

// Do implements broker.Sessions with broker.Repairing: a refused session
// is dropped and fn runs once more on a new one.
func (b *SimBroker) Do(ctx context.Context, userID string, fn func(ctx context.Context, s *ibkr.Session, conn broker.Conn) error) error {
	acquire := func(ctx context.Context) (*ibkr.Session, broker.Conn, func(), error) {
		c, err := b.Session(ctx, userID)
		if err != nil {
			return nil, broker.Conn{}, nil, err
		}
		return c.Session, broker.Conn{UserID: userID, Mode: c.Account.Mode, AccountID: c.Account.ID}, func() {}, nil
	}
	report := func(s *ibkr.Session, _ ibkr.Kind) { b.Invalidate(userID, s) }
	return broker.Repairing(ctx, acquire, report, fn)
}

// Invalidate drops sess when it is the user's cached session: the next
// Session call starts over.
func (b *SimBroker) Invalidate(userID string, sess *ibkr.Session) {
	u, err := b.user(userID)
	if err != nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.sess == sess {
		u.sess = nil
	}
}

// Handshakes returns how many live session tokens were made for userID.
func (b *SimBroker) Handshakes(userID string) int {
	u, err := b.user(userID)
	if err != nil {
		return 0
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.handshakes
}
