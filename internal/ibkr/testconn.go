package ibkr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
)

// Mode is which of a user's two credential sets is meant: paper or live.
type Mode string

// The modes; an empty Mode accepts either kind of account.
const (
	ModePaper Mode = "paper"
	ModeLive  Mode = "live"
)

// The Test Connection step names, in order.
const (
	StepCredentials      = "credentials"
	StepLiveSessionToken = "live_session_token"
	StepBrokerageSession = "brokerage_session"
	StepAccounts         = "accounts"
)

// TestStep is one step of Test Connection, in the words users know.
type TestStep struct {
	Name       string        `json:"name"`
	OK         bool          `json:"ok"`
	Duration   time.Duration `json:"-"`
	DurationMS int64         `json:"duration_ms"`
	Message    string        `json:"message"`
	Hint       string        `json:"hint"`
}

// TestError is the overall failure of a Test Connection.
type TestError struct {
	Code    errs.Code `json:"code"`
	Message string    `json:"message"`
	Hint    string    `json:"hint"`
}

// TestResult is the outcome of TestConnection (API.md's TestResult).
type TestResult struct {
	OK       bool       `json:"ok"`
	TestedAt time.Time  `json:"tested_at"`
	Steps    []TestStep `json:"steps"`
	Error    *TestError `json:"error"`
	// FieldErrors are the credential problems when the first step failed.
	FieldErrors []FieldError `json:"-"`
	// Session is the working session when every step passed (nil
	// otherwise); callers that only test may ignore it.
	Session *Session `json:"-"`
}

// TestConnection checks a credential set against IBKR step by step:
// credentials (parse and check), live_session_token (handshake and
// validation), brokerage_session (ssodh/init) and accounts (the account id is
// among IBKR's accounts and is paper or live as mode says). It stops at the
// first failing step. The parsed secrets are not kept.
func TestConnection(ctx context.Context, opts Options, in CredentialsInput, mode Mode) TestResult {
	o := opts.withDefaults()
	res := TestResult{TestedAt: o.Now().UTC()}
	step := func(name string, fn func() (msg string, fail *TestError)) bool {
		start := o.Now()
		msg, fail := fn()
		d := o.Now().Sub(start)
		st := TestStep{Name: name, OK: fail == nil, Duration: d, DurationMS: d.Milliseconds(), Message: msg}
		if fail != nil {
			st.Message, st.Hint = fail.Message, fail.Hint
			res.Error = fail
		}
		res.Steps = append(res.Steps, st)
		return fail == nil
	}

	var creds *Credentials
	ok := step(StepCredentials, func() (string, *TestError) {
		c, err := ParseCredentials(in)
		if err != nil {
			var ce *CredentialsError
			if errors.As(err, &ce) {
				res.FieldErrors = ce.FieldErrors
			}
			return "", &TestError{Code: errs.Invalid, Message: "Credentials are invalid: " + credentialProblems(res.FieldErrors),
				Hint: "Fix the fields named above; every problem is listed."}
		}
		if mode == ModeLive && c.IsPaper() {
			return "", &TestError{Code: errs.Invalid, Message: "Account " + c.AccountID + " is a paper account, but these are the live credentials",
				Hint: "Paper accounts start with DU; save them under paper."}
		}
		if mode == ModePaper && !c.IsPaper() {
			return "", &TestError{Code: errs.Invalid, Message: "Account " + c.AccountID + " is a live account, but these are the paper credentials",
				Hint: "Live accounts start with U; save them under live."}
		}
		creds = c
		msg := "Credentials are complete and consistent (realm " + c.Realm + ")"
		if c.EncryptionKeyDefaulted {
			msg += "; the signature key also serves as the encryption key"
		}
		return msg, nil
	})
	if !ok {
		return res
	}

	var sess *Session
	ok = step(StepLiveSessionToken, func() (string, *TestError) {
		s, err := Handshake(ctx, o, creds)
		creds.SignatureKey, creds.EncryptionKey, creds.AccessTokenSecret = nil, nil, nil
		if err != nil {
			return "", handshakeFailure(err)
		}
		sess = s
		return "Live session token obtained and validated; it expires " + s.Expires().UTC().Format(time.RFC3339), nil
	})
	if !ok {
		return res
	}

	ok = step(StepBrokerageSession, func() (string, *TestError) {
		st, err := sess.InitBrokerage(ctx)
		if err != nil {
			return "", callFailure(err, "Brokerage session could not be opened")
		}
		if st.Competing {
			return "", &TestError{Code: errs.BrokerNotConnected, Message: "Brokerage session is taken by another login of this IBKR username",
				Hint: "Log out of TWS, Client Portal and the mobile app for this username, or use a separate IBKR username for the API."}
		}
		return "Brokerage session open", nil
	})
	if !ok {
		return res
	}

	step(StepAccounts, func() (string, *TestError) {
		l, err := sess.Accounts(ctx)
		if err != nil {
			return "", callFailure(err, "Accounts could not be listed")
		}
		if !l.Has(creds.AccountID) {
			return "", &TestError{Code: errs.BrokerAccountNotFound, Message: fmt.Sprintf("Account not found: %s is not among the %d account(s) of this IBKR login", creds.AccountID, len(l.Accounts)),
				Hint: "Check the account id; it must belong to the IBKR username the consumer key was registered with (paper accounts have their own username)."}
		}
		// IBKR's own flag backs the account-id prefix checked above.
		if mode != "" && l.IsPaper != (mode == ModePaper) {
			login := "live"
			if l.IsPaper {
				login = "paper"
			}
			return "", &TestError{Code: errs.Invalid, Message: fmt.Sprintf("IBKR reports a %s login, but these are the %s credentials", login, mode),
				Hint: "Save paper and live credentials under their own mode; each has its own IBKR username and consumer registration."}
		}
		kind := "live"
		if creds.IsPaper() {
			kind = "paper"
		}
		return fmt.Sprintf("Account %s found (%s)", creds.AccountID, kind), nil
	})
	if res.Error == nil {
		res.OK, res.Session = true, sess
	}
	return res
}

// credentialProblems lists the field problems in one line.
func credentialProblems(fes []FieldError) string {
	parts := make([]string, len(fes))
	for i, fe := range fes {
		parts[i] = fe.Field + ": " + fe.Message
	}
	return strings.Join(parts, "; ")
}

// handshakeFailure words a failed live session token request.
func handshakeFailure(err error) *TestError {
	var e *Error
	if !errors.As(err, &e) {
		return &TestError{Code: errs.BrokerUnavailable, Message: "OAuth handshake failed: " + err.Error()}
	}
	switch e.Kind {
	case KindInvalidSignature:
		if e.Status == 200 {
			return &TestError{Code: e.Kind.Code(), Message: "OAuth handshake failed — live session token did not validate",
				Hint: "IBKR and we derived different tokens: the access token secret, the encryption key or the DH parameters do not match what IBKR has for this consumer."}
		}
		hint := "Use the signature key whose public key you uploaded for this consumer, and the current access token with its secret."
		if strings.Contains(strings.ToLower(e.Text), "timestamp") {
			hint = "IBKR refused the request's timestamp: check this server's clock (IBKR allows a few minutes of skew)."
		}
		if e.Text != "" {
			hint = "IBKR said: " + e.Text + ". " + hint
		}
		return &TestError{Code: e.Kind.Code(), Message: "OAuth handshake failed — invalid signature", Hint: hint}
	case KindConsumerNotRecognized:
		return &TestError{Code: e.Kind.Code(), Message: "Consumer key not recognized",
			Hint: "Check the consumer key. A newly registered consumer often stays inactive until after IBKR's weekend restart; try again then."}
	case KindInvalidAccessToken:
		return &TestError{Code: e.Kind.Code(), Message: "Access token not recognized",
			Hint: "Regenerate the access token in IBKR's self-service portal (it takes effect in about a minute) and paste the new token and secret."}
	}
	return callFailure(err, "OAuth handshake failed")
}

// callFailure words a failed API call.
func callFailure(err error, what string) *TestError {
	var e *Error
	if !errors.As(err, &e) {
		return &TestError{Code: errs.BrokerUnavailable, Message: what + ": " + err.Error()}
	}
	t := &TestError{Code: e.Kind.Code(), Message: what}
	if e.Text != "" {
		t.Message += ": " + e.Text
	}
	switch e.Kind {
	case KindTokenExpired:
		t.Message, t.Hint = "Live session token expired", "Test again: every test makes a new token. If it keeps happening, check the server's clock."
	case KindNoBrokerageSession, KindAccountsNotQueried:
		t.Hint = "IBKR's trading server may be restarting (nightly, or on Saturday evenings); try again later."
	case KindRateLimited:
		t.Hint = fmt.Sprintf("IBKR is rate limiting; wait %s and try again.", e.RetryAfter.Round(time.Second))
	case KindAccountNotFound:
		t.Message = "Account not found"
		if e.Text != "" {
			t.Message += ": " + e.Text
		}
		t.Hint = "Check the account id; it must belong to the IBKR username the consumer key was registered with."
	case KindNoPermission:
		t.Message = "No permission"
		if e.Text != "" {
			t.Message += ": " + e.Text
		}
		t.Hint = "This IBKR username lacks a permission the Web API needs; check its trading permissions in IBKR's portal."
	case KindUnavailable, KindOutcomeUnknown:
		t.Message = "IBKR is unreachable or failing"
		if e.Status != 0 {
			t.Message += fmt.Sprintf(" (HTTP %d)", e.Status)
		} else if e.Err != nil {
			// A transport error names the URL and the cause, never a header.
			t.Message += ": " + e.Err.Error()
		}
		t.Hint = "IBKR's Web API may be down (nightly restart, weekend maintenance); try again later."
	case KindBadResponse:
		t.Message = what + ": IBKR's answer could not be understood"
	}
	return t
}

// FormatTestResult writes a Test Connection result for a terminal, one line
// per step with its hint below a failure, then the overall outcome.
func FormatTestResult(w io.Writer, r TestResult) error {
	var b strings.Builder
	for _, s := range r.Steps {
		status := "ok"
		if !s.OK {
			status = "FAILED"
		}
		fmt.Fprintf(&b, "%-20s %-6s %6dms  %s\n", s.Name, status, s.DurationMS, s.Message)
		if s.Hint != "" {
			fmt.Fprintf(&b, "%-20s hint: %s\n", "", s.Hint)
		}
	}
	if r.OK {
		b.WriteString("connection ok\n")
	} else if r.Error != nil {
		fmt.Fprintf(&b, "connection FAILED (%s)\n", r.Error.Code)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
