package ibkr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
)

// Kind classifies an IBKR failure by what the caller should do about it.
type Kind string

// The kinds of IBKR failure.
const (
	// KindInvalidSignature means IBKR refused the OAuth signature of the live
	// session token request, or the LST did not validate. Fix the credentials.
	KindInvalidSignature Kind = "invalid_signature"
	// KindConsumerNotRecognized means "invalid consumer"; a new consumer key is
	// often not active until after IBKR's weekend restart.
	KindConsumerNotRecognized Kind = "consumer_not_recognized"
	// KindInvalidAccessToken means IBKR has no access token secret for the token
	// ("No access secret key found"); regenerate the access token.
	KindInvalidAccessToken Kind = "invalid_access_token"
	// KindTokenExpired means a signed call got 401 or 410; make a new LST.
	KindTokenExpired Kind = "token_expired"
	// KindNoBrokerageSession means "no bridge" or a tickle that is no longer
	// authenticated; call InitBrokerage again.
	KindNoBrokerageSession Kind = "no_brokerage_session"
	// KindAccountsNotQueried means "Please query /accounts first"; call Accounts.
	KindAccountsNotQueried Kind = "accounts_not_queried"
	// KindRateLimited means 429; wait Error.RetryAfter.
	KindRateLimited Kind = "rate_limited"
	// KindOrderRejected means IBKR refused the order; Error.Text is its reason.
	KindOrderRejected Kind = "order_rejected"
	// KindDuplicateOrder means the cOID is already registered, so the order
	// already exists: reconcile, never re-send under a new cOID.
	KindDuplicateOrder Kind = "duplicate_order"
	// KindAccountNotFound means the account id is not among the user's accounts.
	KindAccountNotFound Kind = "account_not_found"
	// KindNoPermission means IBKR refused the call for lack of permission.
	KindNoPermission Kind = "no_permission"
	// KindUnavailable means 5xx or a connection failure before the request was
	// sent (or on a call that is safe to repeat); retry later.
	KindUnavailable Kind = "unavailable"
	// KindOutcomeUnknown means an order request was sent but its answer was lost
	// (timeout, broken connection, unreadable answer, 504). The order may exist:
	// reconcile by cOID; never retry blindly.
	KindOutcomeUnknown Kind = "outcome_unknown"
	// KindQuestionDeclined means IBKR asked a reply question the policy did not
	// confirm (or too many); the order was not placed.
	KindQuestionDeclined Kind = "question_declined"
	// KindBadResponse means IBKR answered something this client cannot parse.
	KindBadResponse Kind = "bad_response"
	// KindRequestFailed means any other 4xx; Error.Text is IBKR's text.
	KindRequestFailed Kind = "request_failed"
)

// kindCodes is the one table from IBKR failure kinds to the error
// vocabulary; a test fails when a kind is missing from it.
var kindCodes = map[Kind]errs.Code{
	KindInvalidSignature:      errs.BrokerInvalidSignature,
	KindInvalidAccessToken:    errs.BrokerInvalidSignature,
	KindConsumerNotRecognized: errs.BrokerConsumerNotRecognized,
	KindTokenExpired:          errs.BrokerTokenExpired,
	KindNoBrokerageSession:    errs.BrokerNotConnected,
	KindAccountsNotQueried:    errs.BrokerNotConnected,
	KindRateLimited:           errs.BrokerRateLimited,
	KindOrderRejected:         errs.BrokerOrderRejected,
	KindDuplicateOrder:        errs.BrokerOrderRejected,
	KindAccountNotFound:       errs.BrokerAccountNotFound,
	KindNoPermission:          errs.BrokerNoPermission,
	KindUnavailable:           errs.BrokerUnavailable,
	KindOutcomeUnknown:        errs.BrokerOutcomeUnknown,
	KindQuestionDeclined:      errs.BrokerQuestionNotAllowlisted,
	KindBadResponse:           errs.BrokerUnavailable,
	KindRequestFailed:         errs.BrokerUnavailable,
}

// Code returns the error code (shared/API.md) for the kind;
// errs.BrokerUnavailable for a kind it does not know.
func (k Kind) Code() errs.Code {
	if c, ok := kindCodes[k]; ok {
		return c
	}
	return errs.BrokerUnavailable
}

// Retryable reports whether the same request may simply be sent again
// (after RetryAfter, a new LST or a new brokerage session as the kind says).
func (k Kind) Retryable() bool {
	switch k {
	case KindUnavailable, KindRateLimited, KindTokenExpired, KindNoBrokerageSession, KindAccountsNotQueried:
		return true
	}
	return false
}

// Error is a classified failure of one IBKR call. Text is IBKR's own words
// (safe to show: IBKR never echoes secrets); Err is a transport cause.
type Error struct {
	Kind Kind
	// Op is the operation, e.g. "place order".
	Op string
	// Method and Endpoint identify the call; Endpoint is the path below the
	// base URL, e.g. /iserver/account/DU1234567/orders.
	Method, Endpoint string
	// Status is the HTTP status, 0 when no response arrived.
	Status int
	// Text is IBKR's error text, or this client's explanation.
	Text string
	// RetryAfter is the wait IBKR asked for with a 429.
	RetryAfter time.Duration
	// Err is the underlying transport or decoding error, if any.
	Err error
}

// Error renders the operation, kind, status and IBKR's text.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString("ibkr ")
	b.WriteString(string(e.Kind))
	if e.Method != "" {
		fmt.Fprintf(&b, " (%s %s", e.Method, e.Endpoint)
		if e.Status != 0 {
			fmt.Fprintf(&b, " → %d", e.Status)
		}
		b.WriteString(")")
	}
	if e.Text != "" {
		b.WriteString(": ")
		b.WriteString(e.Text)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the transport cause.
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of the first *Error in err's chain, or "" when err
// is nil or not an IBKR failure.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// call describes a request for classification.
type call struct {
	op, method, endpoint string
	// placesOrder marks calls that can create an order (place, reply): after
	// they are sent, a lost answer is an unknown outcome, never "unavailable".
	placesOrder bool
	// orderCall marks calls on an order (place, reply, cancel): a refusal
	// there is an order rejection with IBKR's text.
	orderCall bool
	// lst marks the live session token request, where a 401 means the OAuth
	// signature or the consumer is wrong rather than an expired token.
	lst bool
}

// errorText extracts IBKR's message from an error body: {"error": "..."},
// sometimes "message" or "msg", else the trimmed body itself.
func errorText(body []byte) string {
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err == nil {
		for _, k := range []string{"error", "message", "msg"} {
			if s, ok := obj[k].(string); ok && s != "" {
				return limitText(s)
			}
		}
	}
	return limitText(strings.TrimSpace(string(body)))
}

// limitText bounds a message taken from a response.
func limitText(s string) string {
	if len(s) > 500 {
		return s[:500] + "…"
	}
	return s
}

// classifyResponse turns an HTTP error response (status >= 300, or a 2xx
// body that carries {"error": ...}) into an *Error.
func classifyResponse(c call, status int, header http.Header, body []byte) *Error {
	text := errorText(body)
	e := &Error{Op: c.op, Method: c.method, Endpoint: c.endpoint, Status: status, Text: text}
	lower := strings.ToLower(text)
	switch {
	case status == http.StatusTooManyRequests:
		e.Kind = KindRateLimited
		e.RetryAfter = parseRetryAfter(header.Get("Retry-After"), time.Now())
	case strings.Contains(lower, "invalid consumer"):
		e.Kind = KindConsumerNotRecognized
	case strings.Contains(lower, "no access secret key"):
		e.Kind = KindInvalidAccessToken
	case strings.Contains(lower, "no bridge"):
		e.Kind = KindNoBrokerageSession
	case strings.Contains(lower, "query /accounts first") || strings.Contains(lower, "query/accounts first"):
		e.Kind = KindAccountsNotQueried
	case strings.Contains(lower, "already registered") && strings.Contains(lower, "order id"):
		e.Kind = KindDuplicateOrder
	case c.lst && (status == http.StatusUnauthorized || status == http.StatusForbidden):
		e.Kind = KindInvalidSignature
	case status == http.StatusUnauthorized || status == http.StatusGone:
		e.Kind = KindTokenExpired
	case accountNotFoundText(lower):
		e.Kind = KindAccountNotFound
	case status == http.StatusForbidden || noPermissionText(lower):
		e.Kind = KindNoPermission
	case status == http.StatusGatewayTimeout && c.placesOrder:
		// A gateway gave up waiting for IBKR, which may have taken the order.
		e.Kind = KindOutcomeUnknown
	case status >= 500:
		e.Kind = KindUnavailable
	case c.placesOrder || c.orderCall:
		e.Kind = KindOrderRejected
	default:
		e.Kind = KindRequestFailed
	}
	if e.Text == "" {
		e.Text = http.StatusText(status)
	}
	return e
}

// accountNotFoundText recognizes IBKR's (unpublished) wordings for an
// account the user does not have.
func accountNotFoundText(lower string) bool {
	if !strings.Contains(lower, "account") {
		return false
	}
	for _, w := range []string{"not found", "does not exist", "invalid account", "unknown account", "no such account", "not valid for this user"} {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// noPermissionText recognizes a missing trading permission.
func noPermissionText(lower string) bool {
	for _, w := range []string{"permission", "not authorized", "not allowed", "forbidden"} {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date; without one
// it assumes IBKR's penalty box of about ten minutes is not yet in force and
// asks for one second.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Second
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
		return 0
	}
	return time.Second
}
