package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/trading"
)

// TestConfirmLogLinesCarryTheRequestID: every log line a confirm writes —
// the feature's (trading's outcome line, through the request's logger in
// the context) and the access log — carries the request id and the user,
// so an operator can join them to the request a user reports. The trading
// service itself logs nowhere: its lines can only come from the context.
func TestConfirmLogLinesCarryTheRequestID(t *testing.T) {
	e := newTradeEnv(t)
	g := e.publish(t, newSignalBody(nil))
	before := len(e.logs.String())
	const rid = "confirm-request-0001"
	st, body := e.call(t, e.a, http.MethodPost, "/signals/"+g.ID+"/confirm", map[string]string{"side": "BUY"},
		"Idempotency-Key", "log-k1", "X-Request-Id", rid)
	if st != http.StatusCreated {
		t.Fatalf("confirm = %d %s", st, body)
	}
	conf := decodeAs[trading.Confirmation](t, body)

	// The access line is written after the answer; wait for it.
	var lines []map[string]any
	for deadline := time.Now().Add(5 * time.Second); ; {
		lines = nil
		for _, l := range strings.Split(strings.TrimSpace(e.logs.String()[before:]), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("log line %q: %v", l, err)
			}
			lines = append(lines, m)
		}
		if lines[len(lines)-1]["message"] == "request" || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	msgs := map[string]bool{}
	for _, m := range lines {
		msgs[m["message"].(string)] = true
		if m["request_id"] != rid || m["user_id"] != e.a.id {
			t.Errorf("log line %v lacks request_id %s or user_id %s", m, rid, e.a.id)
		}
		if m["message"] == "order outcome recorded" && (m["confirmation"] != conf.ID || m["mode"] != "paper") {
			t.Errorf("outcome line %v, want confirmation %s and mode paper", m, conf.ID)
		}
	}
	for _, want := range []string{"order outcome recorded", "request"} {
		if !msgs[want] {
			t.Errorf("no %q line among the confirm's log lines %v", want, lines)
		}
	}
}
