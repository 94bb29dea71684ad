package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
)

// testTimeout bounds one Test Connection: four IBKR calls.
const testTimeout = 30 * time.Second

// Test runs Test Connection for mode (POST /broker/{mode}/test): on in
// when given (credentials not yet saved), else on the saved set. A failed
// test is a result with ok false, not an error. A test of the saved set is
// stored as its last_test and sets its status; every test is audited.
func (s *Service) Test(ctx context.Context, userID string, mode Mode, in *Input, actor Actor) (TestResult, error) {
	saved := in == nil
	var row sealedRow
	var input Input
	if saved {
		var err error
		if row, err = s.loadSealed(ctx, userID, mode); err != nil {
			return TestResult{}, err
		}
		o, err := s.open(userID, row)
		if err != nil {
			return TestResult{}, fmt.Errorf("test %s connection: %w", mode, err)
		}
		defer o.wipe()
		input = o.input
	} else {
		input = *in
	}
	tctx, cancel := context.WithTimeout(ctx, testTimeout)
	res := s.runTest(tctx, mode, input)
	cancel()
	input = Input{}
	// The test made a new live session token, which at IBKR supersedes
	// the one the cache holds for this login.
	s.cache.Invalidate(userID)
	if err := s.saveTestResult(ctx, userID, mode, row, res, saved, actor); err != nil {
		return TestResult{}, err
	}
	return res, nil
}

// runTest performs the four steps and stops at the first failure.
func (s *Service) runTest(ctx context.Context, mode Mode, in Input) TestResult {
	res := TestResult{TestedAt: s.now().UTC().Truncate(time.Millisecond)}
	fail := func(step Step, code errs.Code) TestResult {
		step.OK = false
		res.Steps = append(res.Steps, step)
		res.Error = &TestError{Code: code, Message: step.Message, Hint: step.Hint}
		return res
	}

	start := s.now()
	creds, err := parseInput(in)
	if err != nil {
		st := Step{Name: StepCredentials, DurationMS: s.since(start), Message: "The credentials are incomplete or invalid"}
		var fields []errs.FieldError
		if e := errs.As(err); e != nil && len(e.Fields) > 0 {
			fields = e.Fields
			parts := make([]string, len(e.Fields))
			for i, f := range e.Fields {
				parts[i] = f.Field + ": " + f.Message
			}
			st.Hint = strings.Join(parts, "; ")
		} else {
			st.Hint = "Paste the credentials again from IBKR's self-service portal."
		}
		r := fail(st, errs.Invalid)
		r.Error.Errors = fields
		return r
	}
	accountID := creds.AccountID
	msg := "The credentials are complete and well-formed"
	hint := ""
	if creds.EncryptionKeyDefaulted {
		hint = "No encryption key was given: the signature key is used to decrypt the access token secret."
	}
	res.Steps = append(res.Steps, Step{Name: StepCredentials, OK: true, DurationMS: s.since(start), Message: msg, Hint: hint})

	start = s.now()
	opts := s.ibkrOpts
	opts.Pacer = nil // a test is its own session: never borrow a tenant's pacer
	sess, err := ibkr.Handshake(ctx, opts, creds)
	dropCredentials(creds)
	creds = nil
	if err != nil {
		code, m, h := explain(err)
		return fail(Step{Name: StepLiveSessionToken, DurationMS: s.since(start), Message: m, Hint: h}, code)
	}
	res.Steps = append(res.Steps, Step{Name: StepLiveSessionToken, OK: true, DurationMS: s.since(start),
		Message: "Live session token obtained and validated"})

	start = s.now()
	st, err := sess.InitBrokerage(ctx)
	if err != nil {
		code, m, h := explain(err)
		if code == errs.BrokerUnavailable {
			// IBKR's "failed to generate sso dh token" is a 500: the
			// brokerage session, not the whole API, is what failed.
			code, m, h = explain(&ibkr.Error{Kind: ibkr.KindNoBrokerageSession, Text: ibkrText(err)})
		}
		if st.Competing {
			code, m, h = errs.BrokerNotConnected, "Another IBKR login holds the brokerage session", competingHint
		}
		return fail(Step{Name: StepBrokerageSession, DurationMS: s.since(start), Message: m, Hint: h}, code)
	}
	res.Steps = append(res.Steps, Step{Name: StepBrokerageSession, OK: true, DurationMS: s.since(start),
		Message: "Brokerage session open"})

	start = s.now()
	list, err := sess.Accounts(ctx)
	if err != nil {
		code, m, h := explain(err)
		return fail(Step{Name: StepAccounts, DurationMS: s.since(start), Message: m, Hint: h}, code)
	}
	if step, code, ok := checkAccount(mode, accountID, list); !ok {
		step.DurationMS = s.since(start)
		return fail(step, code)
	}
	res.Steps = append(res.Steps, Step{Name: StepAccounts, OK: true, DurationMS: s.since(start),
		Message: fmt.Sprintf("Account %s found (%s)", MaskAccountID(accountID), accountKind(accountID))})
	res.OK = true
	return res
}

// checkAccount wants the account among IBKR's and of the mode's kind.
func checkAccount(mode Mode, accountID string, list ibkr.AccountList) (Step, errs.Code, bool) {
	st := Step{Name: StepAccounts}
	if !list.Has(accountID) {
		masked := make([]string, len(list.Accounts))
		for i, a := range list.Accounts {
			masked[i] = MaskAccountID(a)
		}
		st.Message = "Account not found"
		st.Hint = fmt.Sprintf("IBKR does not list %s for this login; it lists %s. Check the account id, or use the credentials of the IBKR user that owns the account.",
			MaskAccountID(accountID), strings.Join(masked, ", "))
		if len(masked) == 0 {
			st.Hint = fmt.Sprintf("IBKR lists no account for this login, so %s cannot be used. Check that the IBKR user has a brokerage account.", MaskAccountID(accountID))
		}
		return st, errs.BrokerAccountNotFound, false
	}
	paper := strings.HasPrefix(accountID, "DU")
	switch {
	case mode == Live && paper:
		st.Message = "Paper account under the live connection"
		st.Hint = fmt.Sprintf("%s is a paper trading account (DU…). Save these credentials under Paper, or use your live account (U…) and its own consumer registration here.", MaskAccountID(accountID))
		return st, errs.BrokerAccountNotFound, false
	case mode == Paper && !paper:
		st.Message = "Live account under the paper connection"
		st.Hint = fmt.Sprintf("%s is a live trading account (U…). Save these credentials under Live, or use your paper account (DU…) and its own consumer registration here.", MaskAccountID(accountID))
		return st, errs.BrokerAccountNotFound, false
	}
	return st, "", true
}

func accountKind(id string) string {
	if strings.HasPrefix(id, "DU") {
		return "paper"
	}
	return "live"
}

// dropCredentials forgets decrypted key material once the handshake is done.
func dropCredentials(c *ibkr.Credentials) {
	if c == nil {
		return
	}
	clear(c.AccessTokenSecret)
	c.AccessTokenSecret = nil
	c.SignatureKey, c.EncryptionKey, c.DHPrime = nil, nil, nil
}

const competingHint = "Another login (TWS, Client Portal, IBKR Mobile or another program) is using this IBKR user's brokerage session. Log out there, then test again; Ordertune does not take the session over while you use it elsewhere."

// ibkrText returns IBKR's own words in err, if any.
func ibkrText(err error) string {
	var ie *ibkr.Error
	if errors.As(err, &ie) {
		return ie.Text
	}
	return ""
}

// explain turns an IBKR failure into the troubleshooting words users know:
// the error code, a message and a hint.
func explain(err error) (errs.Code, string, string) {
	var ie *ibkr.Error
	text := ""
	if errors.As(err, &ie) && ie.Text != "" {
		text = " IBKR said: " + ie.Text
	}
	switch ibkr.KindOf(err) {
	case ibkr.KindInvalidSignature:
		return errs.BrokerInvalidSignature, "OAuth handshake failed — invalid signature",
			"IBKR refused the signed request. Check that the signature key is the private key whose public key you uploaded for this consumer key, that the access token and its secret are the current ones, and that the DH parameters are the ones you uploaded."
	case ibkr.KindInvalidAccessToken:
		return errs.BrokerInvalidSignature, "OAuth handshake failed — access token not recognized",
			"IBKR has no secret for this access token. Regenerate the access token in IBKR's self-service portal, paste the new token and its secret, and test again after about a minute."
	case ibkr.KindConsumerNotRecognized:
		return errs.BrokerConsumerNotRecognized, "Consumer key not recognized",
			"New IBKR consumer keys often stay inactive until after IBKR's weekend restart. If you registered this consumer key recently, test again after the weekend; otherwise check it for typos."
	case ibkr.KindTokenExpired:
		return errs.BrokerTokenExpired, "Live session token expired",
			"IBKR stopped accepting the session token. Test again; if it keeps happening, regenerate the access token in IBKR's self-service portal."
	case ibkr.KindNoBrokerageSession, ibkr.KindAccountsNotQueried:
		return errs.BrokerNotConnected, "Brokerage session could not be opened",
			"IBKR did not open a brokerage session for this login. Log out of IBKR's other platforms (TWS, Client Portal, IBKR Mobile), or wait: IBKR restarts its servers nightly and the Web API is down some Saturday evenings." + text
	case ibkr.KindAccountNotFound:
		return errs.BrokerAccountNotFound, "Account not found", "Check the account id, or use the credentials of the IBKR user that owns the account." + text
	case ibkr.KindNoPermission:
		return errs.BrokerNoPermission, "No permission",
			"IBKR refused the request for lack of permission. Check that this IBKR user has Web API access and trading permissions for the account." + text
	case ibkr.KindRateLimited:
		return errs.BrokerRateLimited, "Too many requests to IBKR", "IBKR asked us to slow down. Wait a minute and test again."
	case ibkr.KindRequestFailed, ibkr.KindBadResponse:
		return errs.BrokerUnavailable, "IBKR answered unexpectedly",
			"Try again in a few minutes; if it persists, IBKR may have changed its API." + text
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errs.BrokerUnavailable, "IBKR did not answer in time",
			"IBKR's Web API may be slow or restarting (nightly, and some Saturday evenings). Try again in a few minutes."
	}
	return errs.BrokerUnavailable, "IBKR is not reachable",
		"IBKR's Web API may be down or restarting (nightly, and some Saturday evenings). Try again in a few minutes." + text
}
