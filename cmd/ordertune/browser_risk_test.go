package main

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// riskLimits sets a limit in Settings → Risk, sees it fail in the confirm
// dialog, pauses (banner, Confirm disabled), resumes after a step-up, and
// watches an admin's halt of paper trading disable Confirm with its reason.
func (f *browserFlow) riskLimits(t *testing.T) {
	at := f.adminTab.on(t)
	at.open("/admin/signals")
	at.fillSignal("AMD", "150.00", "3", "-4")
	at.click(`form button[type=submit]`)
	at.waitJS(`document.querySelector('.saved-msg').innerText === 'Published AMD.'`)

	tb := f.subTab.on(t)
	tb.open("/")
	tb.do(chromedp.Click(`//nav//a[normalize-space(.)='Risk']`))
	tb.waitPath("/settings/risk")
	tb.waitJS(`document.querySelector('[name=max_order_value]')`)
	tb.setValue(`[name=max_order_value]`, "1")
	tb.click(`form button[type=submit]`)
	tb.waitJS(`document.querySelector('.saved-msg').innerText === 'Saved.'`)
	tb.screenshot("risk-settings")

	row := `tr[data-ticker=AMD]`
	tb.open("/")
	tb.waitJS(`document.querySelector('` + row + ` [data-action=confirm]')`)
	tb.click(row + ` [data-action=confirm]`)
	tb.waitJS(`document.querySelector('dialog[open] [data-limit=max_order_value].limit-bad')`)
	tb.waitJS(`document.querySelector('dialog[open] .form-alert').innerText.includes('over your risk limit')`)
	if !eval[bool](tb, `[...document.querySelectorAll('dialog[open] button')].find(b => b.innerText === 'Confirm Buy').disabled`) {
		t.Error("Confirm Buy is enabled for an order over the limit")
	}
	if n := eval[int](tb, `document.querySelectorAll('dialog[open] [data-limit]').length`); n != 4 {
		t.Errorf("%d limit lines in the confirm dialog, want 4", n)
	}
	tb.screenshot("risk-over-limit")
	tb.do(chromedp.Click(`//dialog//button[normalize-space(.)='Cancel']`))
	tb.waitJS(`!document.querySelector('dialog[open]')`)

	// Pause, and remove the limit (a raise: it asks for a step-up).
	f.env.endStepUps(t)
	tb.open("/settings/risk")
	tb.waitJS(`document.querySelector('[name=max_order_value]')`)
	tb.setValue(`[name=max_order_value]`, "")
	tb.click(`input[name=trading_paused][value=paused]`)
	tb.click(`form button[type=submit]`)
	tb.stepUp(f.sub)
	tb.waitJS(`document.querySelector('.saved-msg').innerText === 'Saved.' && document.querySelector('#risk-banner')`)
	tb.open("/")
	tb.waitJS(`document.querySelector('#risk-banner') && document.querySelector('` + row + ` [data-action=confirm]').disabled`)
	tb.screenshot("risk-paused")

	tb.open("/settings/risk")
	tb.waitJS(`document.querySelector('[name=max_order_value]')`)
	tb.click(`input[name=trading_paused][value=active]`)
	tb.click(`form button[type=submit]`)
	tb.waitJS(`document.querySelector('.saved-msg').innerText === 'Saved.' && !document.querySelector('#risk-banner')`)

	// The admin halts paper trading with a reason.
	at.open("/admin/risk")
	at.waitJS(`document.querySelector('#halt-paper')`)
	at.click(`#halt-paper`)
	at.setValue(`[name=halt_reason]`, "exchange outage drill")
	at.click(`form button[type=submit]`)
	at.stepUp(f.admin)
	at.waitJS(`document.querySelector('.saved-msg').innerText === 'Saved.'`)
	at.screenshot("admin-risk-halted")
	tb.open("/")
	tb.waitJS(`document.querySelector('#risk-banner') && document.querySelector('#risk-banner').innerText.includes('exchange outage drill') && document.querySelector('` + row + ` [data-action=confirm]').disabled`)
	tb.screenshot("risk-halted")

	at.click(`#halt-paper`)
	at.click(`form button[type=submit]`)
	at.waitJS(`document.querySelector('.saved-msg').innerText === 'Saved.'`)
	tb.open("/")
	tb.waitJS(`document.querySelector('` + row + ` [data-action=confirm]') && !document.querySelector('` + row + ` [data-action=confirm]').disabled && !document.querySelector('#risk-banner')`)
}
