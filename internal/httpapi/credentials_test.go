package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ordertune/ordertune/internal/seal"
)

// TestUndecryptableCredentials: a saved credential sealed with a key the
// server does not hold (a wrong master key, a lost one) is answered with
// 409 credentials_unavailable telling the user to enter the credentials
// again, never a generic 500; the operator's log has an error line naming
// the field and the key id.
func TestUndecryptableCredentials(t *testing.T) {
	env := newBrokerEnv(t)
	sub, c := env.connectedSubscriber("DU1234567")
	foreign := seal.RandomRing("lost-key")
	ct, err := foreign.Seal([]byte("not the real key"), sub.user.ID, "signature_key", "paper")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.srv.pool.Exec(t.Context(), `UPDATE broker_connections SET signature_key = $2 WHERE user_id = $1 AND mode = 'paper'`, sub.user.ID, ct); err != nil {
		t.Fatal(err)
	}
	r := c.do(http.MethodPost, "/api/v1/broker/paper/test", nil)
	if r.status != http.StatusConflict {
		t.Fatalf("test of undecryptable credentials: %d %s, want 409", r.status, r.body)
	}
	if p := r.problem(t); p.Code != "credentials_unavailable" || !strings.Contains(p.Detail, "enter them again") {
		t.Errorf("problem %+v, want credentials_unavailable telling to enter them again", p)
	}
	var logged bool
	for _, line := range strings.Split(env.logs.String(), "\n") {
		if strings.Contains(line, `"level":"error"`) && strings.Contains(line, "credentials_unavailable") &&
			strings.Contains(line, "signature_key") && strings.Contains(line, `\"lost-key\"`) {
			logged = true
		}
	}
	if !logged {
		t.Errorf("no error line for the operator naming the field and key id:\n%s", env.logs.String())
	}
}
