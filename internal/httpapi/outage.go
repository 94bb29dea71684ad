package httpapi

import (
	"time"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/postgres"
)

// outageRetryAfter is what a client is told to wait when the database is
// unreachable: about as long as PostgreSQL takes to restart.
const outageRetryAfter = 5 * time.Second

// asOutage returns the error a failure coded internal becomes when its
// cause is the database being unreachable (postgres.Unavailable): 503
// unavailable with a Retry-After, as /readyz says, instead of a 500 that
// reads like a bug. Any other error is returned unchanged.
func asOutage(e *errs.Error, err error) *errs.Error {
	if e.Code != errs.Internal || !postgres.Unavailable(err) {
		return e
	}
	return &errs.Error{Code: errs.Unavailable, Message: "the service is briefly unavailable (its database is unreachable); try again shortly",
		RetryAfter: outageRetryAfter, Err: err}
}
