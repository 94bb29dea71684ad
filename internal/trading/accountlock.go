package trading

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// accountLocks is the one owner of "one order per IBKR account at a time":
// IBKR wants no other order for an account while a reply chain is open. A
// PostgreSQL advisory lock makes it hold across replicas; a mutex per
// account in front of it keeps one process's waiters from each holding a
// pooled connection while they wait.
type accountLocks struct {
	pool *pgxpool.Pool

	mu    sync.Mutex
	locks map[string]*accountMutex
}

// accountMutex is one account's in-process lock and how many hold or wait
// for it, so that an idle account's entry is dropped.
type accountMutex struct {
	sync.Mutex
	refs int
}

// advisoryKey names an account's advisory lock.
const advisoryKey = `hashtextextended('ordertune/ibkr-account/' || $1, 0)`

// lock takes accountID's lock and returns the connection that holds it and
// its release. The advisory lock is session-level, on a connection of its
// own and outside any transaction: the connection holds it while IBKR is
// called, and a crash that ends the session releases it. What must be read
// under the lock is read on that connection, so that an order waiting for
// the pool never holds one already (which would deadlock a small pool).
func (l *accountLocks) lock(ctx context.Context, accountID string) (*pgxpool.Conn, func(), error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*accountMutex{}
	}
	m := l.locks[accountID]
	if m == nil {
		m = &accountMutex{}
		l.locks[accountID] = m
	}
	m.refs++
	l.mu.Unlock()
	m.Lock()
	local := func() {
		m.Unlock()
		l.mu.Lock()
		if m.refs--; m.refs == 0 {
			delete(l.locks, accountID)
		}
		l.mu.Unlock()
	}
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		local()
		return nil, nil, fmt.Errorf("account lock: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(`+advisoryKey+`)`, accountID); err != nil {
		conn.Release()
		local()
		return nil, nil, fmt.Errorf("account lock: %w", err)
	}
	return conn, func() {
		// A failed unlock (the database went away) ends the session, and
		// with it the lock: the connection is not returned to the pool.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock(`+advisoryKey+`)`, accountID); err != nil {
			_ = conn.Conn().Close(uctx)
		}
		conn.Release()
		local()
	}, nil
}
