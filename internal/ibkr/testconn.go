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

// The Test Connection step names, in order.
const (
	StepCredentials        = "credentials"
	StepLiveSessionToken   = "live_session_token"
	StepBrokerageSession   = "brokerage_session"
	StepAccounts           = "accounts"
	StepTradingPermissions = "trading_permissions"
)

// PermissionProbe is the stock whose one-share what-if checks trading
// permissions: a NASDAQ-100 stock every US-stock permission covers.
const PermissionProbe = "AAPL"

// TestStep is one step of Test Connection, in the words users know.
type TestStep struct {
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

// TestResult is the outcome of Test Connection, step by step (API.md's
// TestResult).
type TestResult struct {
	OK       bool       `json:"ok"`
	TestedAt time.Time  `json:"tested_at"`
	Steps    []TestStep `json:"steps"`
	Error    *TestError `json:"error"`
	// Session is the working session when every step passed (nil
	// otherwise); callers that only test may ignore it.
	Session *Session `json:"-"`
}

// ConnectionTest is what TestConnection checks.
type ConnectionTest struct {
	Input CredentialsInput
	// Mode is "paper" or "live": the kind of account the credentials must
	// reach; empty accepts either.
	Mode string
	// FieldName names a credential field in the messages (the caller's
	// names, e.g. its REST API's); nil keeps this package's names.
	FieldName func(string) string
}

// TestConnection is the one Test Connection: it checks a credential set
// against IBKR step by step — credentials (parse and check),
// live_session_token (handshake and validation), brokerage_session
// (ssodh/init), accounts (the account is among IBKR's and of the mode's
// kind) and trading_permissions (IBKR's what-if for one share of a
// NASDAQ-100 stock: catches IBKR Lite accounts and accounts without API or
// US-stock trading permission on day one) — and stops at the first failing
// step. Account ids appear only
// masked; the parsed secrets are dropped after the handshake. The CLI
// prints the result; the broker package stores and audits it.
func TestConnection(ctx context.Context, opts Options, t ConnectionTest) TestResult {
	o := opts.withDefaults()
	res := TestResult{TestedAt: o.Now().UTC().Truncate(time.Millisecond)}
	start := o.Now()
	pass := func(name, msg, hint string) {
		res.Steps = append(res.Steps, TestStep{Name: name, OK: true, DurationMS: o.Now().Sub(start).Milliseconds(), Message: msg, Hint: hint})
		start = o.Now()
	}
	fail := func(name string, code errs.Code, msg, hint string) TestResult {
		res.Steps = append(res.Steps, TestStep{Name: name, DurationMS: o.Now().Sub(start).Milliseconds(), Message: msg, Hint: hint})
		res.Error = &TestError{Code: code, Message: msg, Hint: hint}
		return res
	}

	creds, err := ParseCredentials(t.Input)
	if err != nil {
		hint := "Paste the credentials again from IBKR's self-service portal."
		var fields []errs.FieldError
		var ce *CredentialsError
		if errors.As(err, &ce) && len(ce.FieldErrors) > 0 {
			parts := make([]string, len(ce.FieldErrors))
			for i, fe := range ce.FieldErrors {
				name := fe.Field
				if t.FieldName != nil {
					name = t.FieldName(name)
				}
				parts[i] = name + ": " + fe.Message
				fields = append(fields, errs.FieldError{Field: name, Message: fe.Message})
			}
			hint = strings.Join(parts, "; ")
		}
		r := fail(StepCredentials, errs.Invalid, "The credentials are incomplete or invalid", hint)
		r.Error.Errors = fields
		return r
	}
	accountID := creds.AccountID
	hint := ""
	if creds.EncryptionKeyDefaulted {
		hint = "No encryption key was given: the signature key is used to decrypt the access token secret."
	}
	pass(StepCredentials, "The credentials are complete and well-formed", hint)

	sess, err := Handshake(ctx, o, creds)
	clear(creds.AccessTokenSecret)
	creds.SignatureKey, creds.EncryptionKey, creds.AccessTokenSecret, creds.DHPrime = nil, nil, nil, nil
	if err != nil {
		code, m, h := Explain(err)
		return fail(StepLiveSessionToken, code, m, h)
	}
	pass(StepLiveSessionToken, "Live session token obtained and validated; it expires "+sess.Expires().UTC().Format(time.RFC3339), "")

	// Only if it is free: a test never signs the user's other login out.
	st, err := sess.InitBrokerageIfFree(ctx)
	switch {
	case err == nil && st.Competing, err != nil && st.Competing:
		return fail(StepBrokerageSession, errs.BrokerNotConnected, "Another IBKR login holds the brokerage session", competingHint)
	case err != nil:
		code, m, h := Explain(err)
		if code == errs.BrokerUnavailable {
			// IBKR's "failed to generate sso dh token" is a 500: the
			// brokerage session, not the whole API, is what failed.
			code, m, h = Explain(&Error{Kind: KindNoBrokerageSession, Text: ibkrText(err)})
		}
		return fail(StepBrokerageSession, code, m, h)
	}
	pass(StepBrokerageSession, "Brokerage session open", "")

	list, err := sess.Accounts(ctx)
	if err != nil {
		code, m, h := Explain(err)
		return fail(StepAccounts, code, m, h)
	}
	if m, h, ok := checkAccount(t.Mode, accountID, list); !ok {
		return fail(StepAccounts, errs.BrokerAccountNotFound, m, h)
	}
	pass(StepAccounts, fmt.Sprintf("Account %s found (%s)", MaskAccountID(accountID), accountKind(accountID)), "")

	l, err := sess.USStock(ctx, PermissionProbe)
	var w WhatIf
	if err == nil {
		w, err = sess.WhatIf(ctx, accountID, Order{Conid: l.Conid, OrderType: "MKT", Side: "BUY", Quantity: 1, TIF: "DAY"})
	}
	switch {
	case err != nil:
		code, m, h := Explain(err)
		return fail(StepTradingPermissions, code, m, h)
	case w.Refusal != "":
		return fail(StepTradingPermissions, errs.BrokerNoPermission, "IBKR would refuse orders from this account",
			"IBKR said: "+strings.TrimRight(w.Refusal, ". ")+". Orders through the Web API need an IBKR Pro account (not Lite) with US-stock "+
				"trading permission: check Client Portal → Settings → Account Settings → Trading Permissions.")
	}
	pass(StepTradingPermissions, "IBKR would accept an order for "+PermissionProbe+" (a what-if, nothing placed)", "")
	res.OK, res.Session = true, sess
	return res
}

// checkAccount wants the account among IBKR's and of the mode's kind, by
// its prefix and by IBKR's own paper flag.
func checkAccount(mode, accountID string, list AccountList) (msg, hint string, ok bool) {
	masked := MaskAccountID(accountID)
	if !list.Has(accountID) {
		all := make([]string, len(list.Accounts))
		for i, a := range list.Accounts {
			all[i] = MaskAccountID(a)
		}
		if len(all) == 0 {
			return "Account not found", fmt.Sprintf("IBKR lists no account for this login, so %s cannot be used. Check that the IBKR user has a brokerage account.", masked), false
		}
		return "Account not found", fmt.Sprintf("IBKR does not list %s for this login; it lists %s. Check the account id, or use the credentials of the IBKR user that owns the account.",
			masked, strings.Join(all, ", ")), false
	}
	paper := accountKind(accountID) == "paper"
	switch {
	case mode == "live" && paper:
		return "Paper account under the live connection", fmt.Sprintf("%s is a paper trading account (DU…). Save these credentials under Paper, or use your live account (U…) and its own consumer registration here.", masked), false
	case mode == "paper" && !paper:
		return "Live account under the paper connection", fmt.Sprintf("%s is a live trading account (U…). Save these credentials under Live, or use your paper account (DU…) and its own consumer registration here.", masked), false
	case mode != "" && list.IsPaper != (mode == "paper"):
		login := "live"
		if list.IsPaper {
			login = "paper"
		}
		return fmt.Sprintf("IBKR reports a %s login, but these are the %s credentials", login, mode),
			"Save paper and live credentials under their own mode; each has its own IBKR username and consumer registration.", false
	}
	return "", "", true
}

func accountKind(id string) string {
	if strings.HasPrefix(id, "DU") {
		return "paper"
	}
	return "live"
}

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

const competingHint = "Another login (TWS, Client Portal, IBKR Mobile or another program) is using this IBKR user's brokerage session. Log out there, then test again; Ordertune does not take the session over while you use it elsewhere."

// ibkrText returns IBKR's own words in err, if any.
func ibkrText(err error) string {
	var ie *Error
	if errors.As(err, &ie) {
		return ie.Text
	}
	return ""
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
