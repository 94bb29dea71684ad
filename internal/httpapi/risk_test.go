package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ordertune/ordertune/internal/risk"
)

// TestRiskProblemsOverHTTP: a limit's refusal is 422 risk_limit_exceeded
// naming the limit, its value and what the order would have made it; the
// switches are 409 with their code and reason; an exit passes a pause.
func TestRiskProblemsOverHTTP(t *testing.T) {
	e := newTradeEnv(t)
	g := e.publish(t, newSignalBody(nil)) // 5 × 187.25
	confirm := func(key string) (int, Problem) {
		st, body := e.call(t, e.a, http.MethodPost, "/signals/"+g.ID+"/confirm", map[string]string{"side": "BUY"}, "Idempotency-Key", key)
		return st, decodeAs[Problem](t, body)
	}
	if st, body := e.call(t, e.a, http.MethodPut, "/settings/risk", map[string]any{"max_shares_per_order": "4"}); st != http.StatusOK {
		t.Fatalf("set a limit: %d %s", st, body)
	}
	st, p := confirm("k1")
	if st != http.StatusUnprocessableEntity || p.Code != "risk_limit_exceeded" || p.Limit == nil ||
		p.Limit.Name != "max_shares_per_order" || p.Limit.Limit != "4" || p.Limit.WouldBe != "5" || !strings.Contains(p.Detail, "maximum shares per order") {
		t.Fatalf("over the limit: %d %+v %+v", st, p, p.Limit)
	}
	e.stepUp(t, e.a) // a raise: validated only after a step-up
	if st, body := e.call(t, e.a, http.MethodPut, "/settings/risk", map[string]any{"max_shares_per_order": "5000000"}); st != http.StatusUnprocessableEntity ||
		!strings.Contains(string(body), `"field":"max_shares_per_order"`) {
		t.Fatalf("above the ceiling: %d %s", st, body)
	}
	if st, body := e.call(t, e.a, http.MethodPut, "/settings/risk", map[string]any{"max_shares_per_order": "3", "trading_paused": true}); st != http.StatusOK {
		t.Fatalf("pause: %d %s", st, body)
	}
	if st, p := confirm("k2"); st != http.StatusConflict || p.Code != "trading_paused" {
		t.Fatalf("paused: %d %+v", st, p)
	}
	rs, err := risk.New(risk.Config{Pool: e.pool})
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.SetSuspended(t.Context(), e.admin.id, e.a.id, true, "unpaid invoice", ""); err != nil {
		t.Fatal(err)
	}
	if st, p := confirm("k3"); st != http.StatusConflict || p.Code != "user_suspended" || !strings.Contains(p.Detail, "unpaid invoice") {
		t.Fatalf("suspended: %d %+v", st, p)
	}
	if n := len(e.sim.Orders(t)); n != 0 {
		t.Fatalf("%d orders sent", n)
	}
}
