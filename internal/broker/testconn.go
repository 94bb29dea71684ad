package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
)

// testTimeout bounds one Test Connection: six IBKR calls.
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
	opts := s.ibkrOpts
	opts.Pacer = nil // a test is its own session: never borrow a tenant's pacer
	res := ibkr.TestConnection(tctx, opts, ibkr.ConnectionTest{Input: credentialsInput(input), Mode: string(mode), FieldName: restField})
	cancel()
	res.Session = nil
	input = Input{}
	if until, restarting := s.cache.restarting(s.now()); restarting && res.Error != nil && res.Error.Code != errs.Invalid {
		// IBKR answers nothing useful while it restarts: say so first.
		res.Error.Hint = fmt.Sprintf("IBKR is in its scheduled restart until %s UTC (every night around midnight New York time, "+
			"longer at weekends); test again after it. ", until.UTC().Format("15:04")) + res.Error.Hint
	}
	// The test made a new live session token, which at IBKR supersedes
	// the one the cache holds for this login.
	s.cache.Invalidate(userID)
	if err := s.saveTestResult(ctx, userID, mode, row, res, saved, actor); err != nil {
		return TestResult{}, err
	}
	return res, nil
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
