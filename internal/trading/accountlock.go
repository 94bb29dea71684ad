package trading

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
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
//
// The lock is taken by the first statement of the batch first, and what
// first queues runs under it, in the same round trip: the confirm sends its
// write-ahead row that way. A failed batch ends the session (and with it
// the lock, if it was taken): nothing is left held.
//
// unlockSQL, queued last in the batch that records the order's outcome,
// releases the lock in that round trip; release then only returns the
// connection.
func (l *accountLocks) lock(ctx context.Context, accountID string, first *pgx.Batch) (*pgxpool.Conn, func(unlocked bool), error) {
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
	b := &pgx.Batch{}
	b.Queue(lockSQL, accountID)
	if first != nil {
		b.QueuedQueries = append(b.QueuedQueries, first.QueuedQueries...)
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		closeConn(ctx, conn)
		conn.Release()
		local()
		return nil, nil, fmt.Errorf("account lock: %w", err)
	}
	return conn, func(unlocked bool) {
		if !unlocked {
			// A failed unlock (the database went away) ends the session,
			// and with it the lock: the connection is not returned to the
			// pool.
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, err := conn.Exec(uctx, unlockSQL, accountID); err != nil {
				closeConn(uctx, conn)
			}
		}
		conn.Release()
		local()
	}, nil
}

// lockSQL takes an account's advisory lock, waiting for it; its argument
// is the account.
const lockSQL = `SELECT pg_advisory_lock(` + advisoryKey + `)`

// unlockSQL releases an account's advisory lock; its argument is the
// account.
const unlockSQL = `SELECT pg_advisory_unlock(` + advisoryKey + `)`

// closeConn ends conn's session, which releases whatever advisory lock it
// holds; the pool drops the connection when it is released, which the
// caller must still do (pgxpool.Pool.Close waits for every acquired one).
func closeConn(ctx context.Context, conn *pgxpool.Conn) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = conn.Conn().Close(cctx)
}
