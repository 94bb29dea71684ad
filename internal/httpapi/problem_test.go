package httpapi

import (
	"net/http"
	"testing"

	"github.com/ordertune/ordertune/internal/errs"
)

// TestEveryCodeIsAnErrorStatus: an error is never answered with a success
// status (an unknown outcome is the confirm's 202 with the confirmation,
// never a problem).
func TestEveryCodeIsAnErrorStatus(t *testing.T) {
	codes := []errs.Code{errs.Invalid, errs.Unauthenticated, errs.MFARequired, errs.Forbidden, errs.NotFound, errs.Conflict,
		errs.RateLimited, errs.Unavailable, errs.Internal, errs.BrokerInvalidSignature, errs.BrokerConsumerNotRecognized,
		errs.BrokerTokenExpired, errs.BrokerAccountNotFound, errs.BrokerNoPermission, errs.BrokerOrderRejected,
		errs.BrokerUnavailable, errs.BrokerRateLimited, errs.BrokerNotConnected, errs.BrokerOutcomeUnknown,
		errs.BrokerQuestionNotAllowlisted}
	for _, c := range codes {
		if st := status(&errs.Error{Code: c}); st < 400 {
			t.Errorf("status(%s) = %d, want an error status", c, st)
		}
	}
	if st := status(&errs.Error{Code: errs.BrokerOutcomeUnknown}); st != http.StatusBadGateway {
		t.Errorf("status(broker_outcome_unknown) = %d, want 502", st)
	}
}
