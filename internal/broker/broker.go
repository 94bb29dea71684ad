// Package broker owns a user's IBKR connections: two credential sets (live
// and paper) sealed at rest, which one is active, Test Connection, and the
// per-tenant session cache that keeps each tenant's IBKR session ready
// (live session token, brokerage session, accounts queried) in memory only.
//
// Secrets (the two private keys, the access token secret, the DH parameters
// and the account id) are sealed with the key ring, bound to the user, the
// field and the mode; they are opened only to run a handshake or a test, and
// the decrypted values are dropped right after.
package broker

import (
	"fmt"
	"strings"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
)

// Mode names a credential set: each user has one for live trading and one
// for paper trading.
type Mode string

// The two modes.
const (
	Live  Mode = "live"
	Paper Mode = "paper"
)

// ParseMode checks a mode given by a client.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case Live, Paper:
		return Mode(s), nil
	}
	return "", errs.E(errs.Invalid, "mode must be live or paper")
}

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
}

// TestResult is the outcome of Test Connection, step by step.
type TestResult struct {
	OK       bool       `json:"ok"`
	TestedAt time.Time  `json:"tested_at"`
	Steps    []Step     `json:"steps"`
	Error    *TestError `json:"error"`
}

// Step is one step of Test Connection: credentials, live_session_token,
// brokerage_session or accounts.
type Step struct {
	Name       string `json:"name"`
	OK         bool   `json:"ok"`
	DurationMS int64  `json:"duration_ms"`
	Message    string `json:"message"`
	Hint       string `json:"hint"`
}

// TestError is why Test Connection failed, in the words users know.
type TestError struct {
	Code    errs.Code `json:"code"`
	Message string    `json:"message"`
	Hint    string    `json:"hint"`
	// Errors names each field of the credentials that failed to parse, as
	// a 422 would, so a form can mark the fields; empty for other steps.
	Errors []errs.FieldError `json:"errors,omitempty"`
}

// The names of the Test Connection steps, in order.
const (
	StepCredentials      = "credentials"
	StepLiveSessionToken = "live_session_token"
	StepBrokerageSession = "brokerage_session"
	StepAccounts         = "accounts"
)

// MaskAccountID shows an account id as its prefix and last four digits,
// "U•••4567", enough for a user to recognise it.
func MaskAccountID(id string) string {
	prefix := "U"
	if strings.HasPrefix(id, "DU") {
		prefix = "DU"
	}
	digits := strings.TrimPrefix(id, prefix)
	if len(digits) > 4 {
		digits = digits[len(digits)-4:]
	}
	return prefix + "•••" + digits
}
