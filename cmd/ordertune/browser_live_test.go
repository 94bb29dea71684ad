package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// useLiveForOrders connects a live account, makes it the one orders go to,
// sees the confirm dialog name it, and switches orders back to paper.
func (f *browserFlow) useLiveForOrders(t *testing.T) {
	tb := f.subTab.on(t)
	tb.open("/settings/broker?mode=live")
	tb.waitJS(`document.getElementById('conn-h').innerText === 'Live connection'`)
	u := f.env.simCredentials(t, f.keys, "U7654321", true)
	tb.fillBroker(u)
	tb.click(`button[data-action=test]`)
	tb.waitJS(`document.querySelector('.test-region .test-result[data-ok]')`)
	f.env.endStepUps(t)
	tb.click(`button[data-action=save]`)
	tb.stepUp(f.sub)
	tb.waitJS(`document.querySelector('.status-line .badge[data-status=connected]')`)
	if got := tb.text("main"); !strings.Contains(got, "Orders currently go to your paper account.") {
		t.Errorf("a saved live connection took orders before being chosen:\n%s", got)
	}
	f.env.endStepUps(t)
	tb.do(chromedp.Click(`//button[normalize-space(.)='Use Live for orders']`))
	tb.stepUp(f.sub) // orders to real money: a fresh code
	tb.waitJS(`document.querySelector('.active-pill') && document.querySelector('.active-pill').innerText === 'Orders go here'`)
	tb.screenshot("live-active")

	// The confirm dialog says where the order would go: live, masked.
	tb.open("/")
	row := `tr[data-ticker=MSFT]`
	tb.waitJS(`document.querySelector('` + row + ` [data-action=confirm]')`)
	tb.click(row + ` [data-action=confirm]`)
	tb.waitJS(`document.querySelector('dialog[open] [data-fact=quantity]')`)
	facts := eval[map[string]string](tb, `Object.fromEntries([...document.querySelectorAll('dialog[open] .facts > div')].map(d => [d.querySelector('dt').innerText, d.querySelector('dd').innerText]))`)
	if facts["Mode"] != "Live" || !strings.HasSuffix(facts["Account"], "4321") || strings.Contains(facts["Account"], "U7654321") {
		t.Errorf("dialog with live orders: Mode %q, Account %q; want Live and the masked live account", facts["Mode"], facts["Account"])
	}
	if got := tb.text("dialog[open]"); !strings.Contains(got, "This places a real order in your live account.") {
		t.Errorf("the live dialog gives no warning:\n%s", got)
	}
	// A live order needs the ticker typed: Confirm stays disabled until then.
	confirmOn := func() bool {
		return !eval[bool](tb, `[...document.querySelectorAll('dialog[open] button')].find(b => b.innerText.startsWith('Confirm')).disabled`)
	}
	if confirmOn() {
		t.Error("Confirm is enabled on the live account before the ticker is typed")
	}
	tb.typeInto(`dialog[open] .confirm-typed input`, "msf")
	if confirmOn() {
		t.Error("Confirm is enabled after a partial ticker")
	}
	tb.typeInto(`dialog[open] .confirm-typed input`, "msft")
	if !confirmOn() {
		t.Error("Confirm stays disabled after typing the ticker")
	}
	tb.screenshot("live-dialog")
	tb.do(chromedp.KeyEvent(kb.Escape))
	tb.waitJS(`!document.querySelector('dialog')`)

	tb.open("/settings/broker?mode=paper")
	tb.waitJS(`document.getElementById('conn-h').innerText === 'Paper connection'`)
	tb.do(chromedp.Click(`//button[normalize-space(.)='Use Paper for orders']`))
	tb.waitJS(`document.querySelector('.active-pill') && document.querySelector('.active-pill').innerText === 'Orders go here'`)
}
