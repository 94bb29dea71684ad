package httpapi

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/ordertune/ordertune/internal/trading"
)

// TestTenantIsolation: every route that takes a confirmation id answers
// another tenant's id with 404 and nothing of the row; lists and the
// signal's my_confirmation show only the caller's own.
func TestTenantIsolation(t *testing.T) {
	e := newTradeEnv(t)
	g := e.publish(t, newSignalBody(nil))
	st, body := e.call(t, e.a, http.MethodPost, "/signals/"+g.ID+"/confirm", map[string]string{"side": "BUY"}, "Idempotency-Key", "a-1")
	if st != http.StatusCreated {
		t.Fatalf("A's confirm = %d %s", st, body)
	}
	mine := decodeAs[trading.Confirmation](t, body)
	routes := []struct{ method, path string }{
		{http.MethodGet, "/confirmations/" + mine.ID},
		{http.MethodPost, "/confirmations/" + mine.ID + "/cancel"},
	}
	for _, r := range routes {
		st, body := e.call(t, e.b, r.method, r.path, nil)
		if st != http.StatusNotFound || bytes.Contains(body, []byte(mine.ID)) || bytes.Contains(body, []byte("AAPL")) {
			t.Errorf("B: %s %s = %d %s, want 404 without A's data", r.method, r.path, st, body)
		}
		// The owner reaches it.
		if st, body := e.call(t, e.a, r.method, r.path, nil); st >= 300 {
			t.Errorf("A: %s %s = %d %s, want success", r.method, r.path, st, body)
		}
	}
	// Malformed ids are "not found" too, never a 500.
	for _, id := range []string{"nope", "00000000-0000-0000-0000-00000000000g", "'; DROP TABLE confirmations; --"} {
		if st, _ := e.call(t, e.b, http.MethodGet, "/confirmations/"+id, nil); st != http.StatusNotFound {
			t.Errorf("GET /confirmations/%s = %d, want 404", id, st)
		}
	}
	_, body = e.call(t, e.b, http.MethodGet, "/confirmations", nil)
	if l := decodeAs[page[trading.Confirmation]](t, body); len(l.Items) != 0 {
		t.Errorf("B's log has %d entries, want 0", len(l.Items))
	}
	_, body = e.call(t, e.b, http.MethodGet, "/signals", nil)
	if l := decodeAs[page[trading.Signal]](t, body); len(l.Items) != 1 || l.Items[0].MyConfirmation != nil {
		t.Errorf("B sees my_confirmation %+v, want null", l.Items[0].MyConfirmation)
	}
	_, body = e.call(t, e.a, http.MethodGet, "/signals", nil)
	if l := decodeAs[page[trading.Signal]](t, body); len(l.Items) != 1 || l.Items[0].MyConfirmation == nil || l.Items[0].MyConfirmation.ID != mine.ID {
		t.Errorf("A's my_confirmation = %s", body)
	}
	_, body = e.call(t, e.a, http.MethodGet, "/confirmations/"+mine.ID, nil)
	got := decodeAs[trading.Confirmation](t, body)
	if len(got.Events) < 2 || got.Events[0].Status != "pending" || got.Events[1].Status != "submitted" {
		t.Errorf("A's confirmation events = %+v, want pending then submitted", got.Events)
	}
	// Admin routes are refused to subscribers.
	for _, p := range []string{"/admin/confirmations", "/admin/audit", "/admin/audit/verify"} {
		if st, _ := e.call(t, e.a, http.MethodGet, p, nil); st != http.StatusForbidden {
			t.Errorf("subscriber GET %s = %d, want 403", p, st)
		}
	}
}
