package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/trading"
)

func TestAdminAuditAndVerify(t *testing.T) {
	e := newTradeEnv(t)
	ctx := context.Background()
	_, body := e.call(t, e.admin, http.MethodPost, "/signals", newSignalBody(nil))
	g := decodeAs[trading.Signal](t, body)
	if st, body := e.call(t, e.a, http.MethodPost, "/signals/"+g.ID+"/confirm", map[string]string{"side": "BUY"}, "Idempotency-Key", "k"); st != 201 {
		t.Fatalf("confirm = %d %s", st, body)
	}
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
