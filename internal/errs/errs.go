// Package errs is Ordertune's error vocabulary: a small set of codes that every
// feature speaks and that the HTTP layer alone turns into statuses.
//
// A *Error carries what the client may see (code, message, per-field problems);
// the wrapped cause is for the log only and never leaves the server.
package errs

import (
	"errors"
	"fmt"
	"time"
)

// Code is a machine-readable error class, as sent in problem+json's "code".
type Code string

// The codes of the vocabulary. API.md lists them; the HTTP layer maps each one
// to exactly one status.
const (
	Invalid         Code = "invalid_argument"
	Unauthenticated Code = "unauthenticated"
	MFARequired     Code = "mfa_required"
	Forbidden       Code = "forbidden"
	NotFound        Code = "not_found"
	Conflict        Code = "conflict"
	RateLimited     Code = "rate_limited"
	Unavailable     Code = "unavailable"
	Internal        Code = "internal"

	// StepUpRequired refuses a sensitive action until the session has
	// entered a fresh second factor (POST /auth/step-up).
	StepUpRequired Code = "step_up_required"
	// CredentialsUnavailable says stored secrets can no longer be opened
	// with the server's keys: the user must enter them again.
	CredentialsUnavailable Code = "credentials_unavailable"

	BrokerInvalidSignature       Code = "broker_invalid_signature"
	BrokerConsumerNotRecognized  Code = "broker_consumer_not_recognized"
	BrokerTokenExpired           Code = "broker_token_expired"
	BrokerAccountNotFound        Code = "broker_account_not_found"
	BrokerNoPermission           Code = "broker_no_permission"
	BrokerOrderRejected          Code = "broker_order_rejected"
	BrokerUnavailable            Code = "broker_unavailable"
	BrokerRateLimited            Code = "broker_rate_limited"
	BrokerNotConnected           Code = "broker_not_connected"
	BrokerOutcomeUnknown         Code = "broker_outcome_unknown"
	BrokerQuestionNotAllowlisted Code = "broker_question"

	// Risk limits and switches (internal/risk).
	RiskLimitExceeded Code = "risk_limit_exceeded"
	TradingPaused     Code = "trading_paused"
	TradingHalted     Code = "trading_halted"
	UserSuspended     Code = "user_suspended"
	// PastCutoff means the order's auction cut-off has passed.
	PastCutoff Code = "past_cutoff"
	// MarketClosed means the exchange does not trade when the order needs it.
	MarketClosed Code = "market_closed"
	// BrokerMaintenance means IBKR is in one of its restart windows; the
	// error's RetryAfter says when it ends.
	BrokerMaintenance Code = "broker_maintenance"
	// BrokerSessionCompeting means another login (Client Portal, TWS)
	// holds the user's IBKR brokerage session and the user chose to wait
	// rather than take it back; nothing was sent.
	BrokerSessionCompeting Code = "broker_session_competing"
)

// FieldError names one invalid input field and says what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an error with a code and a message that is safe to show to the
// client. Err, when set, is the internal cause: logged, never shown.
type Error struct {
	Code       Code
	Message    string
	Fields     []FieldError
	RetryAfter time.Duration
	Err        error
}

// Error returns the client-safe message followed by the internal cause, for logs.
func (e *Error) Error() string {
	msg := string(e.Code)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// E returns an *Error with code and a formatted client-safe message.
func E(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with code and message whose internal cause is err.
func Wrap(err error, code Code, message string) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// Fields returns an invalid-argument error listing each field's problem.
func Fields(message string, fields ...FieldError) *Error {
	return &Error{Code: Invalid, Message: message, Fields: fields}
}

// As returns the first *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// CodeOf returns the code of the first *Error in err's chain, Internal for any
// other non-nil error, and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	if e := As(err); e != nil {
		return e.Code
	}
	return Internal
}

// Is reports whether err's chain holds an *Error with the given code.
func Is(err error, code Code) bool { return CodeOf(err) == code }

// All reports whether every failure in err's tree (errors.Join, several
// %w) is an *Error with the given code: for a caller that treats a
// failure differently only when nothing else went wrong with it.
func All(err error, code Code) bool {
	if e, ok := err.(*Error); ok {
		return e.Code == code
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		list := u.Unwrap()
		for _, e := range list {
			if !All(e, code) {
				return false
			}
		}
		return len(list) > 0
	case interface{ Unwrap() error }:
		return u.Unwrap() != nil && All(u.Unwrap(), code)
	}
	return false
}
