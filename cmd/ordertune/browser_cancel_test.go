package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// cancelOrder confirms a new signal, cancels the working order from its
// detail page and watches it become Cancelled without a reload.
func (f *browserFlow) cancelOrder(t *testing.T) {
	at := f.adminTab.on(t)
	at.open("/admin/signals")
	at.fillSignal("NVDA", "140.20", "3", "-4")
	at.click(`form button[type=submit]`)
	at.waitJS(`document.querySelector('.saved-msg').innerText === 'Published NVDA.'`)

	tb := f.subTab.on(t)
	tb.open("/")
	row := `tr[data-ticker=NVDA]`
	tb.waitJS(`document.querySelector('` + row + ` [data-action=confirm]')`)
	tb.click(row + ` [data-action=confirm]`)
	tb.waitJS(`document.querySelector('dialog[open] [data-fact=quantity]')`)
	tb.do(chromedp.Click(`//dialog//button[normalize-space(.)='Confirm Buy']`))
	tb.waitJS(`!document.querySelector('dialog[open]') && document.querySelector('` + row + ` .badge[data-status=submitted]')`)
	href := eval[string](tb, `document.querySelector('`+row+` a.status-link').getAttribute('href')`)
	id := strings.TrimPrefix(href, "/confirmations/")

	tb.open(href)
	tb.waitJS(`[...document.querySelectorAll('button')].some(b => b.innerText === 'Cancel order')`)
	tb.screenshot("cancel-before")
	// Cancel asks first; keeping the order changes nothing. The page
	// re-renders while it polls, so buttons are clicked from the page.
	clickCancel := `[...document.querySelectorAll('main button')].find(b => b.innerText === 'Cancel order').click()`
	tb.waitJS(`(` + clickCancel + `, true)`)
	tb.waitJS(`document.querySelector('dialog[open]') && document.activeElement.innerText === 'Keep the order'`)
	tb.screenshot("cancel-ask")
	tb.do(chromedp.Click(`//dialog//button[normalize-space(.)='Keep the order']`))
	tb.waitJS(`!document.querySelector('dialog')`)
	if got := tb.text(".status-line .badge"); got != "Submitted" {
		t.Errorf("after keeping the order the badge says %q", got)
	}
	tb.waitJS(`(` + clickCancel + `, true)`)
	tb.waitJS(`document.querySelector('dialog[open]')`)
	tb.do(chromedp.Click(`//dialog//button[normalize-space(.)='Cancel order']`))
	// The order is cancelled at IBKR at once; until reconciliation records
	// it the badge says Cancelling…, never the old Submitted, and the page
	// keeps polling, with no reload.
	tb.waitJS(`document.querySelector('.status-line .badge[data-status=cancelling], .status-line .badge[data-status=cancelled]')`)
	if got := tb.text(".status-line .badge"); got == "Submitted" {
		t.Errorf("badge right after cancelling = %q", got)
	}
	tb.waitJS(`document.querySelector('.status-line .badge[data-status=cancelled]')`)
	if n := eval[int](tb, `[...document.querySelectorAll('button')].filter(b => b.innerText === 'Cancel order').length`); n != 0 {
		t.Error("a cancelled order still offers Cancel order")
	}
	history := eval[[]string](tb, `[...document.querySelectorAll('.timeline .badge')].map(b => b.dataset.status)`)
	if len(history) == 0 || history[len(history)-1] != "cancelled" {
		t.Errorf("status history = %q, want it to end in cancelled", history)
	}
	tb.screenshot("cancelled")

	var orders []ibkrsim.SimOrder
	f.env.simCall(t, http.MethodGet, "/sim/orders", nil, &orders)
	found := false
	for _, o := range orders {
		if o.COID == id {
			found = true
			if o.Status != "Cancelled" {
				t.Errorf("the order at the simulator is %q, want Cancelled", o.Status)
			}
		}
	}
	if !found {
		t.Errorf("no order with cOID %s at the simulator", id)
	}
}
