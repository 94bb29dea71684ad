package trading

import (
	"context"

	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/ibkr"
)

// FromBroker makes the broker service's per-tenant session cache the
// trading feature's Broker: its sessions come ready (LST, brokerage
// session, accounts queried, allowlisted questions suppressed: give the
// cache's CacheConfig.SuppressQuestions the same ids as
// Config.AllowedQuestions), and refusals are reported back so the cache
// repairs the session.
func FromBroker(s *broker.Service) Broker { return brokerCache{s} }

type brokerCache struct{ s *broker.Service }

// ActiveAccount implements Broker without calling IBKR.
func (b brokerCache) ActiveAccount(ctx context.Context, userID string) (Account, error) {
	a, err := b.s.ActiveAccount(ctx, userID)
	if err != nil {
		return Account{}, err
	}
	return Account{Mode: string(a.Mode), ID: a.ID, Masked: a.Masked}, nil
}

// Session implements Broker with the cache's ready session.
func (b brokerCache) Session(ctx context.Context, userID string) (Conn, error) {
	sess, conn, err := b.s.Cache().Session(ctx, userID)
	if err != nil {
		return Conn{}, err
	}
	return Conn{Session: sess, Account: Account{Mode: string(conn.Mode), ID: conn.AccountID, Masked: broker.MaskAccountID(conn.AccountID)}}, nil
}

// Invalidate implements Broker by reporting IBKR's refusal to the cache.
func (b brokerCache) Invalidate(userID string, sess *ibkr.Session, kind ibkr.Kind) {
	b.s.Cache().Report(userID, sess, kind)
}
