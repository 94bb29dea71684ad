package ibkr

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ordertune/ordertune/internal/errs"
)

// Explain turns an IBKR failure into the troubleshooting words users know:
// its error code (from the kind's table), a message and a hint. Test
// Connection shows them per step; the session cache gives them to a
// failed session.
func Explain(err error) (errs.Code, string, string) {
	var ie *Error
	if !errors.As(err, &ie) {
		if errors.Is(err, context.DeadlineExceeded) {
			return errs.BrokerUnavailable, "IBKR did not answer in time",
				"IBKR's Web API may be slow or restarting (nightly, and some Saturday evenings). Try again in a few minutes."
		}
		return errs.BrokerUnavailable, "IBKR is not reachable",
			"IBKR's Web API may be down or restarting (nightly, and some Saturday evenings). Try again in a few minutes."
	}
	said := ""
	if ie.Text != "" {
		said = " IBKR said: " + ie.Text
	}
	code := ie.Kind.Code()
	switch ie.Kind {
	case KindInvalidSignature:
		if ie.Status == 200 {
			// The handshake answered, but the token it derived did not
			// validate against IBKR's signature of it.
			return code, "OAuth handshake failed — live session token did not validate",
				"IBKR and we derived different tokens: the access token secret, the encryption key or the DH parameters do not match what IBKR has for this consumer."
		}
		if strings.Contains(strings.ToLower(ie.Text), "timestamp") {
			return code, "OAuth handshake failed — invalid signature",
				"IBKR refused the request's timestamp: check this server's clock (IBKR allows a few minutes of skew)." + said
		}
		return code, "OAuth handshake failed — invalid signature",
			"IBKR refused the signed request. Check that the signature key is the private key whose public key you uploaded for this consumer key, that the access token and its secret are the current ones, and that the DH parameters are the ones you uploaded." + said
	case KindInvalidAccessToken:
		return code, "OAuth handshake failed — access token not recognized",
			"IBKR has no secret for this access token. Regenerate the access token in IBKR's self-service portal, paste the new token and its secret, and test again after about a minute."
	case KindConsumerNotRecognized:
		return code, "Consumer key not recognized",
			"New IBKR consumer keys often stay inactive until after IBKR's weekend restart. If you registered this consumer key recently, test again after the weekend; otherwise check it for typos."
	case KindTokenExpired:
		return code, "Live session token expired",
			"IBKR stopped accepting the session token. Test again; if it keeps happening, check this server's clock or regenerate the access token in IBKR's self-service portal."
	case KindNoBrokerageSession, KindAccountsNotQueried:
		return code, "Brokerage session could not be opened",
			"IBKR did not open a brokerage session for this login. Log out of IBKR's other platforms (TWS, Client Portal, IBKR Mobile), or wait: IBKR restarts its servers nightly and the Web API is down some Saturday evenings." + said
	case KindAccountNotFound:
		return code, "Account not found", "Check the account id, or use the credentials of the IBKR user that owns the account." + said
	case KindNoPermission:
		return code, "No permission",
			"IBKR refused the request for lack of permission. Check that this IBKR user has Web API access and trading permissions for the account." + said
	case KindRateLimited:
		return code, "Too many requests to IBKR", "IBKR asked us to slow down. Wait a minute and test again."
	case KindRequestFailed, KindBadResponse:
		return code, "IBKR answered unexpectedly", "Try again in a few minutes; if it persists, IBKR may have changed its API." + said
	}
	if ie.Status != 0 {
		said = fmt.Sprintf(" IBKR answered HTTP %d.", ie.Status) + said
	}
	return code, "IBKR is not reachable",
		"IBKR's Web API may be down or restarting (nightly, and some Saturday evenings). Try again in a few minutes." + said
}
