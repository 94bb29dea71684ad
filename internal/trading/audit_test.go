package trading_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/audit"
)

// TestConfirmationCreateIsAudited: the audit row of a confirm names the
// client's address, the Idempotency-Key and the conid, which is resolved
// before the row is written, so a ticker's first order has it too.
func TestConfirmationCreateIsAudited(t *testing.T) {
	t.Parallel()
	ctx := audit.WithClientIP(context.Background(), "203.0.113.7")
	w, u := newTrader(t, "1")
	for _, key := range []string{"key-1", "key-2"} {
		if _, _, err := w.svc.Confirm(ctx, u, w.signal(t, nil).ID, key, "BUY"); err != nil {
			t.Fatal(err)
		}
	}
	type row struct {
		Action, IP, Key, Conid string
	}
	rows, err := w.pool.Query(ctx, `SELECT action, coalesce(ip, ''), coalesce(details->>'idempotency_key', ''),
			coalesce(details->>'conid', '')
		FROM audit_events WHERE user_id = $1 AND action IN ('confirmation.create', 'confirmation.submitted') ORDER BY id`, u)
	if err != nil {
		t.Fatal(err)
	}
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.Action, &r.IP, &r.Key, &r.Conid); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var conid string
	if err := w.pool.QueryRow(ctx, `SELECT conid::text FROM conids WHERE ticker = 'AAPL'`).Scan(&conid); err != nil {
		t.Fatal(err)
	}
	want := []row{
		// The contract is resolved before the pending row is written (under
		// the account's lock), so even a ticker's first order records it.
		{"confirmation.create", "203.0.113.7", "key-1", conid},
		{"confirmation.submitted", "", "", conid},
		{"confirmation.create", "203.0.113.7", "key-2", conid},
		{"confirmation.submitted", "", "", conid},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit rows (-want +got):\n%s", diff)
	}
}
