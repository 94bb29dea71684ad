// Package broker owns a user's IBKR connections: two credential sets (live
// and paper) sealed at rest, which one is active, Test Connection (storage
// and audit around ibkr.TestConnection), and the per-tenant session cache
// that keeps each tenant's IBKR session ready (live session token,
// brokerage session, accounts queried) in memory only.
//
// Orders is the trading feature's way to IBKR: it implements the Broker
// interface that package trading declares, in trading's words, on top of
// the cache's Do, which repairs a refused session (Repairing) and runs the
// call once more. The reply-question allowlist is configured here, once
// (Config.AllowedQuestions): suppressed at session start and confirmed on
// orders.
//
// Secrets (the two private keys, the access token secret, the DH parameters
// and the account id) are sealed with the key ring, bound to the user, the
// field and the mode; they are opened only to run a handshake or a test, and
// the decrypted values are dropped right after.
package broker

import (
	"fmt"
	"time"

	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/trading"
)

// Mode names a credential set: each user has one for live trading and one
// for paper trading. It is the trading feature's Mode.
type Mode = trading.Mode

// The two modes.
const (
	Live  = trading.Live
	Paper = trading.Paper
)

// Status is a connection's state as last seen by Test Connection.
type Status string

// The connection statuses.
const (
	StatusUntested          Status = "untested"
	StatusConnected         Status = "connected"
	StatusFailed            Status = "failed"
	StatusPendingActivation Status = "pending_activation"
)

// Input is a credential set as a client sends it (PUT /broker/{mode}), with
// the REST field names. It holds secrets: it never prints them.
type Input struct {
	ConsumerKey       string `json:"consumer_key"`
	AccessToken       string `json:"access_token"`
	AccessTokenSecret string `json:"access_token_secret"`
	SignatureKeyPEM   string `json:"signature_key_pem"`
	// EncryptionKeyPEM is optional: empty means the signature key decrypts
	// the access token secret too.
	EncryptionKeyPEM string `json:"encryption_key_pem"`
	// DHParams is the `openssl dhparam 2048` PEM or the prime in hex.
	DHParams  string `json:"dh_params"`
	AccountID string `json:"account_id"`
}

// Format prints the consumer key only, so an Input logged by mistake leaks
// nothing.
func (in Input) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "broker.Input{consumer_key:%q secrets:redacted}", in.ConsumerKey)
}

// Connection is one saved credential set as clients see it: never a
// secret, not even sealed.
type Connection struct {
	Mode            Mode        `json:"mode"`
	ConsumerKey     string      `json:"consumer_key"`
	AccountIDMasked string      `json:"account_id_masked"`
	Realm           string      `json:"realm"`
	Status          Status      `json:"status"`
	LastTest        *TestResult `json:"last_test"`
	UpdatedAt       time.Time   `json:"updated_at"`
	// Session is the cached IBKR session of the active connection, or nil.
	Session *SessionState `json:"session,omitempty"`
}

// Overview is GET /broker: the active mode and both connections.
type Overview struct {
	ActiveMode  Mode                 `json:"active_mode"`
	Connections map[Mode]*Connection `json:"connections"`
	// OnCompeting is what Ordertune does while another login holds the
	// brokerage session: CompetingTakeBack or CompetingWait.
	OnCompeting string `json:"on_competing"`
}

// TestResult is the outcome of Test Connection, step by step: the one
// step machine of ibkr.TestConnection, which the CLI runs too.
type TestResult = ibkr.TestResult

// Step is one step of Test Connection: credentials, live_session_token,
// brokerage_session, accounts or trading_permissions.
type Step = ibkr.TestStep

// TestError is why Test Connection failed, in the words users know.
type TestError = ibkr.TestError

// The names of the Test Connection steps, in order.
const (
	StepCredentials      = ibkr.StepCredentials
	StepLiveSessionToken = ibkr.StepLiveSessionToken
	StepBrokerageSession = ibkr.StepBrokerageSession
	StepAccounts         = ibkr.StepAccounts
	// StepTradingPermissions is IBKR's what-if for one share.
	StepTradingPermissions = ibkr.StepTradingPermissions
)

// MaskAccountID shows an account id as users see it, "U•••4567".
func MaskAccountID(id string) string { return ibkr.MaskAccountID(id) }
