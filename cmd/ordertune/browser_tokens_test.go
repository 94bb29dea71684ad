package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// adminTokens creates an API token in Admin → Tokens, publishes a signal
// with it as a program would, revokes it, and sees it refused.
func (f *browserFlow) adminTokens(t *testing.T) {
	tb := f.adminTab.on(t)
	tb.open("/admin/tokens")
	tb.waitJS(`document.querySelector('[name=name]') && document.querySelector('.empty-row')`)
	tb.typeInto(`[name=name]`, "signal feed")
	f.env.endStepUps(t)
	tb.click(`form button[type=submit]`)
	tb.stepUp(f.admin)
	tb.waitJS(`document.querySelector('.token-value') && document.querySelector('button[aria-label="Revoke signal feed"]')`)
	token := tb.text(`.token-value`)
	if !strings.HasPrefix(token, "ot_") {
		t.Fatalf("shown token = %q, want an ot_ token", token)
	}
	if got := tb.text(`[data-token-id] > :nth-child(2)`); got != "signals:write" {
		t.Errorf("scopes cell = %q", got)
	}
	tb.screenshot("created")

	publish := func() int {
		body, _ := json.Marshal(map[string]any{"ticker": "AMD", "strategy": "II", "kind": "entry",
			"signal_date": time.Now().UTC().Format("2006-01-02"), "entry_date": time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02"),
			"ref_close": "150.10", "rsi2": "6", "return_2d": "-0.02", "entry_mode": "next_open_market",
			"expires_at": time.Now().UTC().Add(2 * time.Hour).Format(time.RFC3339)})
		req, _ := http.NewRequest(http.MethodPost, f.env.base+"/api/v1/signals", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := publish(); code != http.StatusCreated {
		t.Fatalf("publishing with the new token: %d, want 201", code)
	}

	tb.open("/admin/tokens")
	tb.waitJS(`document.querySelector('button[aria-label="Revoke signal feed"]')`)
	if got := tb.text(`[data-token-id] > :nth-child(4)`); got == "Never" {
		t.Error("last used still says Never after the token published a signal")
	}
	if strings.Contains(tb.text("main"), token) {
		t.Error("the token is shown again after it was created")
	}
	// Revoke asks first, with focus on the safe answer.
	tb.click(`button[aria-label="Revoke signal feed"]`)
	tb.waitJS(`document.querySelector('dialog[open]') && document.activeElement.innerText === 'Keep it'`)
	tb.screenshot("revoke-ask")
	tb.click(`dialog[open] button[data-answer=yes]`)
	tb.waitJS(`!document.querySelector('button[aria-label="Revoke signal feed"]') && document.querySelector('[data-token-id] .badge').innerText === 'Revoked'`)
	tb.screenshot("revoked")
	if code := publish(); code != http.StatusUnauthorized {
		t.Errorf("publishing with the revoked token: %d, want 401", code)
	}
}
