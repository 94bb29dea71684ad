package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// hookReceiver is a webhook endpoint that checks the Standard Webhooks
// signature with its own code and records the event types it accepted.
type hookReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	secret string
	types  []string
	bad    int
}

func newHookReceiver(t *testing.T) *hookReceiver {
	rc := &hookReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(rc.secret, "whsec_"))
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(r.Header.Get("webhook-id") + "." + r.Header.Get("webhook-timestamp") + "." + string(body)))
		want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
		if rc.secret == "" || r.Header.Get("webhook-signature") != want {
			rc.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		}
		json.Unmarshal(body, &ev)
		if ev.ID != r.Header.Get("webhook-id") {
			rc.bad++
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rc.types = append(rc.types, ev.Type)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// notificationsAndWebhooks: the admin's bell counts the security events of
// the flow so far, all read clears it, a new token shows up in it without
// a reload; Settings → Webhooks adds an endpoint whose secret is shown
// once, sends a test event a receiver verifies, and shows its delivery;
// Settings → Notifications saves a choice.
func (f *browserFlow) notificationsAndWebhooks(t *testing.T) {
	tb := f.adminTab.on(t)
	tb.open("/notifications")
	tb.waitJS(`document.querySelector('.notification[data-type="security.token_created"]') && Number(document.querySelector('.bell').dataset.unread) > 0`)
	tb.screenshot("list")
	tb.click(`.actions button.btn`) // Mark all read
	tb.waitJS(`document.querySelector('.bell').dataset.unread === '0' && document.querySelector('.bell-count').hidden`)

	// A new event reaches the bell by polling, without a reload.
	eval[bool](tb, `(fetch('/api/v1/admin/tokens', {method: 'POST', headers: {'Content-Type': 'application/json'},
		body: JSON.stringify({name: 'bell check', scopes: ['signals:write']})}), true)`)
	tb.waitJS(`document.querySelector('.bell').dataset.unread === '1' && document.querySelector('.bell-count').innerText === '1'`)
	tb.waitJS(`document.querySelectorAll('.notification.unread').length === 1`)

	rc := newHookReceiver(t)
	tb.open("/settings/webhooks")
	tb.waitJS(`document.querySelector('[name=url]') && document.querySelector('.empty-row')`)
	tb.typeInto(`[name=url]`, rc.URL+"/hook")
	tb.click(`form button[type=submit]`)
	// A new place for the account's events to go: a fresh second factor.
	tb.stepUpThenWait(f.admin, `document.querySelector('.webhook-secret') && document.querySelector('[data-webhook-id]')`)
	secret := tb.text(`.webhook-secret`)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("shown secret %q, want whsec_…", secret)
	}
	rc.mu.Lock()
	rc.secret = secret
	rc.mu.Unlock()
	tb.screenshot("created")
	tb.click(`[data-webhook-id] button.btn:not(.btn-quiet):not(.btn-danger)`) // Send test event
	tb.waitJS(`document.querySelector('.deliveries [data-status="connected"]')`)
	rc.mu.Lock()
	got, bad := append([]string(nil), rc.types...), rc.bad
	rc.mu.Unlock()
	if len(got) != 1 || got[0] != "webhook.test" || bad != 0 {
		t.Errorf("receiver accepted %v and refused %d, want one webhook.test", got, bad)
	}
	tb.screenshot("delivered")
	tb.open("/settings/webhooks")
	tb.waitJS(`document.querySelector('[data-webhook-id]')`)
	if strings.Contains(tb.text("main"), secret) {
		t.Error("the secret is shown again after the endpoint was created")
	}

	tb.open("/settings/notifications")
	tb.waitJS(`document.querySelector('input[name="email:order.filled"]')`)
	if !eval[bool](tb, `document.querySelector('input[name="email:order.filled"]').checked`) {
		t.Error("e-mail on fills is off by default")
	}
	tb.click(`input[name="email:order.filled"]`)
	tb.click(`form button[type=submit]`)
	tb.waitJS(`!document.querySelector('.notice-ok').hidden`)
	tb.screenshot("preferences")
	tb.open("/settings/notifications")
	tb.waitJS(`document.querySelector('input[name="email:order.filled"]')`)
	if eval[bool](tb, `document.querySelector('input[name="email:order.filled"]').checked`) {
		t.Error("the saved choice did not stick")
	}
}
