package trading

import "context"

// warm makes the user's broker session ready before a confirm takes the
// account's lock. A cold tenant's session costs a handshake, the brokerage
// session and the accounts query, several round trips to IBKR; made under
// the lock, it would hold the lock's pooled connection all along, and a
// burst of cold tenants (the first confirms after a restart) would take
// every lock connection while every other order waited for one.
//
// A failure is not the confirm's answer: the order's own call under the
// lock meets it again (the broker remembers a refused session for a few
// seconds, and tries once more when IBKR was not reached) and records it
// as the confirmation's failure, as it always has.
func (s *Service) warm(ctx context.Context, userID string) {
	if err := s.broker.Warm(ctx, userID); err != nil {
		s.logger(ctx).Debug().Err(err).Msg("broker session not ready before the account lock; the order tries again")
	}
}
