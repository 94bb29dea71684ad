package notify

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRenderRefusal: an order.failed e-mail carries IBKR's words and the
// advice; another failure only its reason.
func TestRenderRefusal(t *testing.T) {
	refused := `{"ticker":"AAPL","side":"BUY","status":"failed","error":{"code":"broker_order_rejected",
		"message":"Insufficient buying power","kind":"insufficient_funds","advice":"Add funds at IBKR."}}`
	m, err := render("u@example.com", "ev1", OrderFailed, json.RawMessage(refused), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"IBKR said: Insufficient buying power", "What to do: Add funds at IBKR."} {
		if !strings.Contains(m.text, want) || !strings.Contains(m.html, strings.SplitN(want, ": ", 2)[1]) {
			t.Errorf("e-mail lacks %q:\n%s", want, m.text)
		}
	}
	other := `{"ticker":"AAPL","status":"failed","error":{"code":"conflict","message":"nothing was sent"}}`
	if m, err = render("u@example.com", "ev2", OrderFailed, json.RawMessage(other), ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.text, "Reason: nothing was sent") || strings.Contains(m.text, "What to do") {
		t.Errorf("a failure that is no refusal:\n%s", m.text)
	}
}
