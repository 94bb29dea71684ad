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

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/trading"
)

// SimBroker is a trading.Broker for users linked to simulator consumers. It
// caches one session per user, makes it once at a time (single flight), and
// drops it when told the token expired or the brokerage session is gone.
type SimBroker struct {
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
	// Suppress are the reply questions suppressed at brokerage-session start.
	Suppress []string
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
	return &SimBroker{base: o.BaseURL, client: c, suppress: o.Suppress, limits: o.Limits, users: map[string]*simUser{}}
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
	mode := "live"
	if creds.IsPaper() {
		mode = "paper"
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

// ActiveAccount implements trading.Broker.
func (b *SimBroker) ActiveAccount(_ context.Context, userID string) (trading.Account, error) {
	u, err := b.user(userID)
	if err != nil {
		return trading.Account{}, err
	}
	return u.account, nil
}

// Session implements trading.Broker: the LST handshake, ssodh/init, the
// accounts query and the suppression of the allowlisted questions.
func (b *SimBroker) Session(ctx context.Context, userID string) (trading.Conn, error) {
	u, err := b.user(userID)
	if err != nil {
		return trading.Conn{}, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.sess != nil {
		return trading.Conn{Session: u.sess, Account: u.account}, nil
	}
	opts := ibkr.Options{BaseURL: b.base, HTTPClient: b.client, Pacer: u.pacer}
	sess, err := ibkr.Handshake(ctx, opts, u.creds)
	if err != nil {
		return trading.Conn{}, err
	}
	u.handshakes++
	if _, err := sess.InitBrokerage(ctx); err != nil {
		return trading.Conn{}, err
	}
	if _, err := sess.Accounts(ctx); err != nil {
		return trading.Conn{}, err
	}
	if len(b.suppress) > 0 {
		if err := sess.SuppressQuestions(ctx, b.suppress...); err != nil {
			return trading.Conn{}, err
		}
	}
	u.sess = sess
	return trading.Conn{Session: sess, Account: u.account}, nil
}

// Invalidate implements trading.Broker: the next Session call starts over.
func (b *SimBroker) Invalidate(userID string, sess *ibkr.Session, _ ibkr.Kind) {
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
