package trading

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/ids"
	"github.com/ordertune/ordertune/internal/risk"
)

// WarmLockConn readies a new connection of the account-lock pool for the
// statements an order runs on it — the lock, the write-ahead row, the
// outcome with its notification (outcomeEvent, as Config.OutcomeEvent)
// and the unlock — by running each once as a no-op, in one round trip:
// the lock and unlock of a key that names no account, the write-ahead
// statement under a day's cap of no orders (it writes nothing), the
// outcome of a confirmation that does not exist (it matches no row).
//
// A PostgreSQL backend's first run of the write-ahead statement costs it
// about 14 ms (7.7 ms to parse it and load the descriptions of its tables,
// 5.9 ms to plan and run it) against half a millisecond afterwards. Paid by every
// new lock connection at once in the first orders after a start, that
// was the tail of the market-open storm (scripts/BENCHMARKS.md). It is
// meant for the lock pool's AfterConnect, with MinConns keeping warm
// connections open.
func WarmLockConn(ctx context.Context, conn *pgx.Conn, outcomeEvent func(Confirmation, string, int) (EventSQL, error)) error {
	now := time.Now().UTC()
	id, userID, account := ids.New(), ids.New(), "warm-up "+ids.New()
	p := Preview{SignalID: ids.New(), Ticker: "AAPL", Side: Buy, OrderType: Market, TIF: "OPG", Quantity: 1,
		EstimatedValue: "1", Broker: BrokerInfo{Mode: Paper}, refPrice: "1"}
	noOrders := "0"
	w := &pendingWrite{row: pendingConfirmation(id, userID, p, now)}
	b := &pgx.Batch{}
	b.Queue(lockSQL, account)
	queuePending(b, w, pendingArgs(id, userID, "warm-up", requestHash(p.SignalID, string(p.Side)), p, now, []byte("{}"), now, "",
		p.EstimatedValue, risk.DayCap{Orders: &noOrders, Start: now, End: now.Add(time.Hour)}))
	o := outcome{status: StatusSubmitted, brokerOrderID: "0", brokerStatus: "PreSubmitted", message: "warm-up"}
	var ev EventSQL
	if outcomeEvent != nil {
		var err error
		if ev, err = outcomeEvent(w.row.after(o, now), "u", applyArgs+1); err != nil {
			return fmt.Errorf("warm lock connection: %w", err)
		}
	}
	sql, args, err := applyStatement(id, []Status{StatusPending, StatusUnknown}, o, now, ev)
	if err != nil {
		return fmt.Errorf("warm lock connection: %w", err)
	}
	changed := false
	b.Queue(sql, args...).QueryRow(func(row pgx.Row) error {
		_, err := scanConfirmation(row)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		changed = err == nil
		return err
	})
	b.Queue(unlockSQL, account)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		// A batch that failed after its first statement leaves that lock
		// held by the session. The connection is new and holds no other.
		if _, uerr := conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return fmt.Errorf("warm lock connection: %w", err)
	}
	if w.inserted || w.fits || changed {
		// Cannot happen: the cap and the id make both statements no-ops.
		return errors.New("warm lock connection: a no-op statement matched a row")
	}
	return nil
}
