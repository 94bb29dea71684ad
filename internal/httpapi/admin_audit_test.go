package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
)

func TestAdminAuditAndVerify(t *testing.T) {
	e := newTradeEnv(t)
	ctx := context.Background()
	g := e.publish(t, newSignalBody(nil))
	e.confirmBuy(t, e.a, g.ID, "k")
	if _, err := audit.NewSealer(audit.SealerConfig{Pool: e.pool}).SealOnce(ctx); err != nil {
		t.Fatal(err)
	}
	st, body := e.call(t, e.admin, http.MethodGet, "/admin/audit/verify", nil)
	if v := decodeAs[audit.Verification](t, body); st != 200 || !v.OK || v.Checked < 3 {
		t.Fatalf("verify = %d %s, want ok", st, body)
	}
	st, body = e.call(t, e.admin, http.MethodGet, "/admin/audit?user="+e.a.id, nil)
	l := decodeAs[page[audit.Entry]](t, body)
	if st != 200 || len(l.Items) == 0 || l.Items[0].Action != "confirmation.submitted" || !l.Items[0].Sealed {
		t.Fatalf("audit list = %d %s", st, body)
	}
	// Tamper with the confirmation's audit row as the owner, past the
	// append-only trigger: verify names it.
	if _, err := pgtest.OwnerPool(t, e.pool).Exec(ctx, `BEGIN; SET LOCAL session_replication_role = replica;
		UPDATE audit_events SET details = '{}' WHERE id = `+strconv.FormatInt(l.Items[0].ID, 10)+`; COMMIT`); err != nil {
		t.Fatal(err)
	}
	_, body = e.call(t, e.admin, http.MethodGet, "/admin/audit/verify", nil)
	v := decodeAs[audit.Verification](t, body)
	if v.OK || v.FirstBad == nil || v.FirstBad.ID != l.Items[0].ID {
		t.Errorf("verify after tampering = %s, want the first bad entry %d", body, l.Items[0].ID)
	}
	if st, _ := e.call(t, e.admin, http.MethodGet, "/admin/audit?cursor=abc", nil); st != http.StatusUnprocessableEntity {
		t.Errorf("bad cursor = %d, want 422", st)
	}
}

// TestAdminReadsAreAudited: reading the audit trail, verifying it and
// exporting the confirmation log each leave an audit row naming the admin,
// their address and what they asked for; a confirm's row names the
// client's address and its Idempotency-Key.
func TestAdminReadsAreAudited(t *testing.T) {
	e := newTradeEnv(t)
	ctx := context.Background()
	g := e.publish(t, newSignalBody(nil))
	e.confirmBuy(t, e.a, g.ID, "k-1")
	for _, path := range []string{"/admin/audit?action=login.success&limit=5", "/admin/audit/verify", "/admin/confirmations?format=csv&ticker=AAPL"} {
		if st, body := e.call(t, e.admin, http.MethodGet, path, nil); st != 200 {
			t.Fatalf("GET %s = %d %s", path, st, body)
		}
	}
	type row struct{ Action, User, Actor, IP, Details string }
	rows, err := e.pool.Query(ctx, `SELECT action, coalesce(user_id::text, ''), coalesce(actor_id::text, ''), coalesce(ip, ''),
			CASE action WHEN 'audit.read' THEN details->>'action' WHEN 'audit.verify' THEN details->>'ok'
				WHEN 'confirmations.export' THEN concat(details->>'ticker', ' ', details->>'rows')
				ELSE details->>'idempotency_key' END
		FROM audit_events WHERE action IN ('audit.read', 'audit.verify', 'confirmations.export', 'confirmation.create') ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	want := []row{
		{"confirmation.create", e.a.id, e.a.id, "127.0.0.1", "k-1"},
		{"audit.read", e.admin.id, e.admin.id, "127.0.0.1", "login.success"},
		{"audit.verify", e.admin.id, e.admin.id, "127.0.0.1", "true"},
		{"confirmations.export", e.admin.id, e.admin.id, "127.0.0.1", "AAPL 1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit rows (-want +got):\n%s", diff)
	}
}

func TestAuditText(t *testing.T) {
	for in, want := range map[string]string{
		"login.success":                   "login.success",
		"a\x00b":                          "a\uFFFDb",
		"\xff":                            "\uFFFD",
		strings.Repeat("é", 300):          strings.Repeat("é", maxAuditText),
		"line\u2028sep\nnewline\ttab\x7f": "line\u2028sep\uFFFDnewline\uFFFDtab\uFFFD",
	} {
		if got := auditText(in); got != want {
			t.Errorf("auditText(%q) = %q, want %q", in, got, want)
		}
	}
}
