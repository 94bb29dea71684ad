package trading_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/notify"
	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

// notifier tells outcomes as serve does (cmd/ordertune's orderOutcomes),
// through a real notification service, and counts what the test wants to
// see: the events whose data had to be corrected, and, while fail says
// so, makes the statement that records a status fail in PostgreSQL.
type notifier struct {
	ns          *notify.Service
	corrections atomic.Int32

	mu   sync.Mutex
	fail map[trading.Status]int // statuses whose next n recordings fail
}

func newNotifier(t testing.TB, pool *pgxpool.Pool) *notifier {
	t.Helper()
	ns, err := notify.New(notify.Config{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	return &notifier{ns: ns, fail: map[trading.Status]int{}}
}

func (n *notifier) event(c trading.Confirmation, from string, first int) (trading.EventSQL, error) {
	typ := "order." + string(c.Status)
	if !notify.KnownType(typ) {
		return trading.EventSQL{}, nil
	}
	in, err := n.ns.InsertSQL(notify.Event{UserID: c.UserID, Type: typ, Data: c}, from, first)
	if err != nil {
		return trading.EventSQL{}, err
	}
	n.mu.Lock()
	if n.fail[c.Status] > 0 {
		n.fail[c.Status]--
		// An outbox row for no event: the foreign key fails the whole
		// statement when it runs, as a full disk or a lost connection
		// would.
		in.CTEs += `, nbroken AS (INSERT INTO notification_outbox (event_id, created_at) SELECT gen_random_uuid(), now())`
	}
	n.mu.Unlock()
	return trading.EventSQL{CTEs: in.CTEs, Args: in.Args, Correct: func(ctx context.Context, c trading.Confirmation) (bool, error) {
		corrected, err := n.ns.Correct(ctx, in, c)
		if corrected {
			n.corrections.Add(1)
		}
		return corrected, err
	}}, nil
}

// newNotifiedWorld is a world whose outcomes are told through n.
func newNotifiedWorld(t *testing.T) (*world, *notifier) {
	t.Helper()
	var n *notifier
	w := newWorld(t, fastSim(), func(c *trading.Config, _ *tradetest.SimBrokerOptions) {
		n = newNotifier(t, c.Pool)
		c.OutcomeEvent = n.event
	})
	return w, n
}

// sentEvent is an order event as stored, with its data as JSON.
type sentEvent struct {
	Type  string
	Data  string
	InApp bool
}

// events returns user's events, oldest first.
func (w *world) events(t *testing.T, user string) []sentEvent {
	t.Helper()
	rows, err := w.pool.Query(context.Background(), `
		SELECT e.type, e.data::text, e.in_app FROM notification_events e
		WHERE e.user_id = $1 ORDER BY e.created_at, e.type`, user)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []sentEvent
	for rows.Next() {
		var e sentEvent
		if err := rows.Scan(&e.Type, &e.Data, &e.InApp); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// asJSON is c as an event carries it (no status history: that is only on
// single reads), normalized as PostgreSQL's jsonb prints it.
func asJSON(t *testing.T, c trading.Confirmation) string {
	t.Helper()
	c.Events = nil
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return normJSON(t, v)
}

func normJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func parsedJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return normJSON(t, v)
}

// TestOutcomeEventsCarryTheConfirmationAsRecorded: a confirm's outcome is
// told in the statement that records it, built before that statement runs;
// its data is the confirmation exactly as recorded, with no correction —
// for an order IBKR took, one it refused (with the advice), and the fill
// reconciliation records later.
func TestOutcomeEventsCarryTheConfirmationAsRecorded(t *testing.T) {
	t.Parallel()
	w, n := newNotifiedWorld(t)
	u := w.subscriber(t, trading.SizeShares, "5")

	_, entry := w.confirmEntry(t, u, "buy")
	w.track(t, u, entry.ID, trading.StatusSubmitted)
	w.env.Auction(t, true)
	filled := w.track(t, u, entry.ID, trading.StatusFilled)

	w.env.Fault(t, ibkrsim.Fault{Path: ordersPath, Kind: ibkrsim.FaultReject, Value: json.RawMessage(`"no_trading_permission"`), Count: 1})
	g := w.signal(t, nil)
	refused, _, err := w.svc.Confirm(context.Background(), u, g.ID, "refused", "BUY")
	if err == nil || refused.Status != trading.StatusFailed || refused.Error == nil || refused.Error.Advice == nil {
		t.Fatalf("refused order: %+v, %v; want failed with advice", refused, err)
	}

	got := w.events(t, u)
	want := []sentEvent{
		{Type: notify.OrderSubmitted, Data: asJSON(t, entry), InApp: true},
		{Type: notify.OrderFilled, Data: asJSON(t, filled), InApp: true},
		{Type: notify.OrderFailed, Data: asJSON(t, refused), InApp: true},
	}
	for i := range got {
		got[i].Data = parsedJSON(t, got[i].Data)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order events (-want +got):\n%s", diff)
	}
	if c := n.corrections.Load(); c != 0 {
		t.Errorf("%d events were corrected after their statement; the prediction of the recorded row is wrong", c)
	}
}

// TestOutcomeEventCommitsWithItsOutcome: when the statement that records
// a status and its event fails in PostgreSQL, neither is recorded; the
// status is recorded again (the confirm's fallback, reconciliation's next
// pass) and told once.
func TestOutcomeEventCommitsWithItsOutcome(t *testing.T) {
	t.Parallel()
	w, n := newNotifiedWorld(t)
	n.fail[trading.StatusSubmitted], n.fail[trading.StatusFilled] = 1, 1
	u := w.subscriber(t, trading.SizeShares, "5")
	w.filledEntry(t, u)

	var types []string
	for _, e := range w.events(t, u) {
		types = append(types, e.Type)
	}
	if diff := cmp.Diff([]string{notify.OrderSubmitted, notify.OrderFilled}, types); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if got := w.count(t, `SELECT count(*) FROM confirmation_events e JOIN confirmations c ON c.id = e.confirmation_id
		WHERE c.user_id = $1 AND e.status IN ('submitted', 'filled')`, u); got != 2 {
		t.Errorf("%d submitted/filled entries in the status history, want 2 (a failed statement left one behind?)", got)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail[trading.StatusSubmitted]+n.fail[trading.StatusFilled] != 0 {
		t.Errorf("the failing statements never ran: %v", n.fail)
	}
}

// TestOutcomeEventCorrectedWhenTheRowChanged: when the confirmation
// changes while its order is at IBKR (here: a commission written under
// it, as the ledger could), the event built before the outcome's
// statement is corrected to the row as recorded.
func TestOutcomeEventCorrectedWhenTheRowChanged(t *testing.T) {
	t.Parallel()
	w, n := newNotifiedWorld(t)
	u := w.subscriber(t, trading.SizeShares, "5")
	w.env.Fault(t, ibkrsim.Fault{Path: ordersPath, Kind: ibkrsim.FaultLatency, Value: json.RawMessage(`"600ms"`), Count: 1})
	g := w.signal(t, nil)
	changed := make(chan error, 1)
	go func() {
		ctx := context.Background()
		for {
			tag, err := w.pool.Exec(ctx, `UPDATE confirmations SET commission = 1.23 WHERE user_id = $1 AND status = 'pending'`, u)
			if err != nil || tag.RowsAffected() == 1 {
				changed <- err
				return
			}
			time.Sleep(5 * time.Millisecond) // the order is held 600 ms at IBKR
		}
	}()
	c, _, err := w.svc.Confirm(context.Background(), u, g.ID, "buy", "BUY")
	if err != nil {
		t.Fatal(err)
	}
	if err := <-changed; err != nil {
		t.Fatal(err)
	}
	if c.Commission == nil || *c.Commission != "1.23" {
		t.Fatalf("confirmation's commission %v, want 1.23 written while the order was at IBKR", c.Commission)
	}
	if got := n.corrections.Load(); got != 1 {
		t.Errorf("%d corrections, want 1", got)
	}
	ev := w.events(t, u)
	if len(ev) != 1 || parsedJSON(t, ev[0].Data) != asJSON(t, c) {
		t.Errorf("events %+v, want one carrying the confirmation as recorded:\n%s", ev, asJSON(t, c))
	}
}
