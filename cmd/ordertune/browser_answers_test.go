package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/rejection"
)

// ibkrAnswers shows IBKR's answers in the user's words: a refusal with its
// advice in the confirm dialog, the row and the order detail; then another
// login takes the IBKR session: with "wait" the order is refused and the
// banner shows on every page, and with "take it back" the next order takes
// the session back and the banner goes.
func (f *browserFlow) ibkrAnswers(t *testing.T) {
	at := f.adminTab.on(t)
	at.open("/admin/signals")
	at.fillSignal("TSLA", "182.60", "4.5", "-3")
	at.click(`form button[type=submit]`)
	at.waitJS(`document.querySelector('.saved-msg').innerText === 'Published TSLA.'`)

	f.env.simCall(t, http.MethodPost, "/sim/faults", map[string]any{
		"path": "/iserver/account/*/orders", "kind": "reject", "value": "insufficient_funds", "count": 1,
	}, nil)
	text, _ := ibkrsim.RejectionText("insufficient_funds")
	advice := rejection.Explain(text).Advice
	tb := f.subTab.on(t)
	row := `tr[data-ticker=TSLA]`
	confirm := func() {
		t.Helper()
		tb.open("/")
		tb.waitJS(`document.querySelector('` + row + ` [data-action=confirm]') && !document.querySelector('` + row + ` [data-action=confirm]').disabled`)
		tb.click(row + ` [data-action=confirm]`)
		tb.waitJS(`document.querySelector('dialog[open] [data-fact=quantity]')`)
		tb.do(chromedp.Click(`//dialog//button[normalize-space(.)='Confirm Buy']`))
	}
	confirm()
	tb.waitJS(`document.querySelector('dialog[open] .form-alert:not([hidden]) [data-advice]')`)
	if got := tb.text(`dialog[open] .form-alert`); !strings.Contains(got, text) || !strings.Contains(got, advice) {
		t.Errorf("the dialog says %q, want IBKR's words and %q", got, advice)
	}
	tb.screenshot("refusal-dialog")
	tb.do(chromedp.Click(`//dialog//button[normalize-space(.)='Close']`))
	tb.waitJS(`!document.querySelector('dialog') && document.querySelector('` + row + ` [data-advice]')`)
	tb.click(row + ` a.status-link`)
	tb.waitJS(`document.querySelector('.timeline') && document.querySelector('main [data-advice]')`)
	if got := tb.text("main"); !strings.Contains(got, "IBKR said: "+text) || !strings.Contains(got, "What to do: "+advice) {
		t.Errorf("order detail = %q, want IBKR's words and the advice", got)
	}
	tb.screenshot("refusal-detail")

	// The user chooses to wait while another login holds the session.
	choose := func(value string) {
		t.Helper()
		tb.open("/settings/broker")
		tb.waitJS(`document.querySelector('#competing-` + value + `')`)
		tb.click(`#competing-` + value)
		tb.waitJS(`(fetch('/api/v1/broker').then(r => r.json()).then(j => { window.onCompeting = j.on_competing; }), window.onCompeting === '` + value + `')`)
	}
	banner := `document.querySelector('[data-banner=competing]')`
	choose("wait")
	// While another login holds the session and the user waits, IBKR's
	// pass-through (the dashboard's live prices) is refused too (409
	// broker_session_competing); the banner says why. So are the
	// dashboard's positions, read again after the refused order, when the
	// server's 15 s cache of them has run out by then (usually it has not).
	tb.allowFailed("GET /api/v1/ibkr/iserver/marketdata/snapshot", "GET /api/v1/positions")
	tb.waitJS(banner + `.hidden`)
	// Someone signs in to Client Portal: IBKR gives them the session.
	f.env.simCall(t, http.MethodPost, "/sim/faults", map[string]any{
		"path": "/iserver/account/*/orders", "kind": "competing", "count": 1,
	}, nil)
	confirm()
	tb.waitJS(`document.querySelector('dialog[open] .form-alert:not([hidden])')`)
	if got := tb.text(`dialog[open] .form-alert`); !strings.Contains(got, "in use by another login") {
		t.Errorf("the dialog says %q, want the competing login", got)
	}
	tb.do(chromedp.Click(`//dialog//button[normalize-space(.)='Close']`))
	tb.waitJS(`!` + banner + `.hidden && ` + banner + `.innerText.includes('orders will wait until you sign out of it there')`)
	tb.screenshot("competing-wait")
	tb.open("/confirmations")
	tb.waitJS(`!` + banner + `.hidden`)

	choose("take_back")
	tb.waitJS(`!` + banner + `.hidden && ` + banner + `.innerText.includes('take it back at your next order')`)
	tb.screenshot("competing-take-back")
	confirm()
	tb.waitJS(`!document.querySelector('dialog') && document.querySelector('` + row + ` .badge[data-status=submitted], ` + row + ` .badge[data-status=filled]')`)
	tb.waitJS(banner + `.hidden`)
	tb.screenshot("competing-gone")

	var takeovers, told int
	err := f.env.pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM audit_events a JOIN users u ON u.id = a.user_id WHERE u.email = $1 AND a.action = 'broker.session_taken_back'),
		(SELECT count(*) FROM notification_events n JOIN users u ON u.id = n.user_id WHERE u.email = $1 AND n.type = 'broker.competing_session')`,
		f.sub.email).Scan(&takeovers, &told)
	if err != nil || takeovers != 1 || told != 1 {
		t.Errorf("take-overs audited %d, competing notifications %d (%v); want 1 and 1", takeovers, told, err)
	}
}
