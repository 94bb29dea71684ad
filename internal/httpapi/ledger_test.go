package httpapi

import (
	"net/http"
	"testing"

	"github.com/ordertune/ordertune/internal/auth"
)

// The order detail lists the order's executions (time, quantity, price,
// commission) once the ledger imported them, for its owner and in the
// admin log, both as api/openapi.yaml says; before the fill the list is
// empty, not absent.
func TestConfirmationExecutions(t *testing.T) {
	env := newContractEnv(t)
	v := newSpecValidator(t, env.srv)
	sub := env.signIn(env.newAccount(auth.Subscriber, true)).stepUp()
	adm := env.signIn(env.newAccount(auth.Admin, true))
	if r := v.do(t, sub, http.MethodPut, "/api/v1/broker/paper", env.register("DU7654321")); r.status != http.StatusOK {
		t.Fatalf("save credentials: %d %s", r.status, r.body)
	}
	if r := v.do(t, sub, http.MethodPut, "/api/v1/settings/position-size", map[string]any{"mode": "shares", "value": "12"}); r.status != http.StatusOK {
		t.Fatalf("position size: %d %s", r.status, r.body)
	}
	var signal struct{ ID string }
	r := v.do(t, adm, http.MethodPost, "/api/v1/signals", newSignalBody(nil))
	r.json(t, &signal)
	var conf struct{ ID string }
	r = v.do(t, sub, http.MethodPost, "/api/v1/signals/"+signal.ID+"/confirm", map[string]string{"side": "BUY"}, "Idempotency-Key", "executions-1")
	if r.status != http.StatusCreated {
		t.Fatalf("confirm: %d %s", r.status, r.body)
	}
	r.json(t, &conf)

	type detail struct {
		Executions []struct {
			ExecutedAt     string  `json:"executed_at"`
			Quantity       string  `json:"quantity"`
			Price          string  `json:"price"`
			Commission     *string `json:"commission"`
			ConfirmationID string  `json:"confirmation_id"`
		} `json:"executions"`
	}
	var before detail
	r = v.do(t, sub, http.MethodGet, "/api/v1/confirmations/"+conf.ID, nil)
	r.json(t, &before)
	if before.Executions == nil || len(before.Executions) != 0 {
		t.Fatalf("before the fill: %s; want an empty executions list", r.body)
	}

	env.sim.RunAuction(true, map[string]float64{"AAPL": 188.4})
	if r := v.do(t, sub, http.MethodPost, "/api/v1/trades/import", nil); r.status != http.StatusOK {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	for _, c := range []struct {
		who  *client
		path string
	}{{sub, "/api/v1/confirmations/"}, {adm, "/api/v1/admin/confirmations/"}} {
		var d detail
		r := v.do(t, c.who, http.MethodGet, c.path+conf.ID, nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", c.path, r.status, r.body)
		}
		r.json(t, &d)
		if len(d.Executions) != 1 {
			t.Fatalf("GET %s: executions %s, want the one fill", c.path, r.body)
		}
		e := d.Executions[0]
		if e.Quantity != "12" || e.Price != "188.40" || e.Commission == nil || *e.Commission != "1.00" || e.ExecutedAt == "" || e.ConfirmationID != conf.ID {
			t.Errorf("GET %s: execution %+v, want 12 at 188.40, commission 1.00", c.path, e)
		}
	}
}
