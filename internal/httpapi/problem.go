package httpapi

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/risk"
	"github.com/ordertune/ordertune/internal/trading"
)

// Problem is an RFC 9457 problem details object with Ordertune's extensions.
type Problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail,omitempty"`
	Code      errs.Code         `json:"code"`
	RequestID string            `json:"request_id"`
	Errors    []errs.FieldError `json:"errors,omitempty"`
	// Confirmation is the failed confirmation a confirm recorded: the
	// order was not placed, and the row is in the user's log.
	Confirmation *trading.Confirmation `json:"confirmation,omitempty"`
	// Limit is the limit a refused confirm would have broken
	// (risk_limit_exceeded): its name, value and what the order would
	// have made it.
	Limit *risk.Line `json:"limit,omitempty"`
}

// failedConfirmation is a confirm's error together with the confirmation
// it recorded as failed, so that the problem carries both.
type failedConfirmation struct {
	err  error
	conf trading.Confirmation
}

func (f *failedConfirmation) Error() string { return f.err.Error() }
func (f *failedConfirmation) Unwrap() error { return f.err }

// status is the one place where an error code becomes an HTTP status.
func status(e *errs.Error) int {
	switch e.Code {
	case errs.Invalid:
		if len(e.Fields) > 0 {
			return http.StatusUnprocessableEntity
		}
		return http.StatusBadRequest
	case errs.Unauthenticated:
		return http.StatusUnauthorized
	case errs.MFARequired, errs.Forbidden, errs.StepUpRequired:
		return http.StatusForbidden
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Conflict, errs.CredentialsUnavailable, errs.BrokerSessionCompeting:
		return http.StatusConflict
	case errs.RiskLimitExceeded:
		return http.StatusUnprocessableEntity
	case errs.TradingPaused, errs.TradingHalted, errs.UserSuspended:
		// A switch in force is the state of things, not the caller's
		// rights: the same request succeeds once it is lifted.
		return http.StatusConflict
	case errs.RateLimited, errs.BrokerRateLimited:
		return http.StatusTooManyRequests
	case errs.Unavailable, errs.BrokerMaintenance:
		return http.StatusServiceUnavailable
	case errs.PastCutoff, errs.MarketClosed:
		return http.StatusUnprocessableEntity
	case errs.BrokerInvalidSignature, errs.BrokerConsumerNotRecognized, errs.BrokerTokenExpired,
		errs.BrokerAccountNotFound, errs.BrokerNoPermission, errs.BrokerOrderRejected,
		errs.BrokerNotConnected, errs.BrokerQuestionNotAllowlisted:
		return http.StatusUnprocessableEntity
	case errs.BrokerUnavailable, errs.BrokerOutcomeUnknown:
		// An unknown outcome is no error: the confirm answers 202 with the
		// confirmation. One reaching here (a cancel's answer was lost) is
		// IBKR failing to answer.
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

// echoErrors are the errors echo's router and middleware produce (unknown
// route, wrong method, body too large), by status, in the vocabulary.
var echoErrors = map[int]struct {
	code errs.Code
	msg  string
}{
	http.StatusNotFound:              {errs.NotFound, "no such resource"},
	http.StatusMethodNotAllowed:      {errs.Invalid, "method not allowed on this resource"},
	http.StatusRequestEntityTooLarge: {errs.Invalid, "request body too large"},
	http.StatusUnauthorized:          {errs.Unauthenticated, "sign in first"},
	http.StatusForbidden:             {errs.Forbidden, "not allowed"},
	http.StatusTooManyRequests:       {errs.RateLimited, "too many requests; slow down"},
	http.StatusBadRequest:            {errs.Invalid, "malformed request"},
	http.StatusUnsupportedMediaType:  {errs.Invalid, "malformed request"},
}

// fromEcho translates an error of echo's into the vocabulary; one
// echoErrors does not name is internal.
func fromEcho(he *echo.HTTPError) *errs.Error {
	if e, ok := echoErrors[he.Code]; ok {
		return &errs.Error{Code: e.code, Message: e.msg}
	}
	return &errs.Error{Code: errs.Internal, Message: http.StatusText(he.Code), Err: he}
}

// handleError is echo's error handler: every error a handler or middleware
// returns passes here, is logged with the request id, and reaches the
// client as problem+json carrying only the client-safe message.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var e *errs.Error
	var he *echo.HTTPError
	st := 0
	switch {
	case errors.As(err, &e):
		st = status(e)
	case errors.As(err, &he):
		e = fromEcho(he)
		st = status(e)
		if he.Code == http.StatusMethodNotAllowed || he.Code == http.StatusRequestEntityTooLarge {
			st = he.Code // more precise than the code's generic status
		}
	default:
		e = &errs.Error{Code: errs.Internal, Err: err}
		st = status(e)
	}
	if out := asOutage(e, err); out != e {
		e, st = out, status(out)
	}
	msg := e.Message
	if st >= 500 && (e.Code == errs.Internal || msg == "") {
		msg = "internal error; quote the request id when you report it"
	}
	rid := requestID(c)
	ev := s.reqLog(c).Info()
	if st >= 500 || e.Code == errs.CredentialsUnavailable {
		// Undecryptable secrets are the operator's problem too: a key
		// missing from the ring, or a damaged row.
		ev = s.reqLog(c).Error()
	}
	ev.Str("code", string(e.Code)).Int("status", st).Err(err).Msg("request failed")

	if st == http.StatusNotFound && s.ui != nil && wantsPage(c.Request()) {
		s.ui.serveNotFound(c)
		return
	}
	if e.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(st)
		return
	}
	p := Problem{
		Type:      "about:blank",
		Title:     http.StatusText(st),
		Status:    st,
		Detail:    msg,
		Code:      e.Code,
		RequestID: rid,
		Errors:    e.Fields,
	}
	if fc := (*failedConfirmation)(nil); errors.As(err, &fc) {
		p.Confirmation = &fc.conf
	}
	if le := (*risk.LimitError)(nil); errors.As(err, &le) {
		p.Limit = &le.Line
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(st)
	_ = json.NewEncoder(c.Response()).Encode(p)
}
