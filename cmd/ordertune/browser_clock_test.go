package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// The market's clock in the UI (issue 20): times in the exchange's zone
// with the reader's own on hover, a live countdown to the cut-off, and
// IBKR's what-if refusal before anyone presses Confirm.

// exchangeClock matches a time shown in New York time: "09:28 EST",
// "Wed 09:28 EDT", "2026-12-02 14:03:10 EST".
var exchangeClock = regexp.MustCompile(`^(\w{3} )?(\d{4}-\d{2}-\d{2} )?\d{2}:\d{2}(:\d{2})? E[SD]T$`)

// exchangeTimes: the dashboard's "closes" time is New York time, not UTC,
// with the reader's local time on hover.
func (f *uiFlow) exchangeTimes(t *testing.T) {
	tb := f.tab.on(t)
	tb.open("/")
	tb.waitJS(`document.querySelector('tr[data-ticker=MSFT] .sub time')`)
	got := tb.text(`tr[data-ticker=MSFT] .sub time`)
	if !exchangeClock.MatchString(got) {
		t.Errorf("the signal closes at %q, want New York time (EST or EDT)", got)
	}
	if title := eval[string](tb, `document.querySelector('tr[data-ticker=MSFT] .sub time').title`); !strings.HasPrefix(title, "Your time: ") {
		t.Errorf("the closing time's hover = %q, want the reader's local time", title)
	}
	// The machine-readable value is the instant itself.
	iso := eval[string](tb, `document.querySelector('tr[data-ticker=MSFT] .sub time').dateTime`)
	at, err := time.Parse(time.RFC3339, iso)
	if err != nil {
		t.Fatalf("datetime %q: %v", iso, err)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	if want := at.In(ny).Format("15:04 MST"); !strings.HasSuffix(got, want) {
		t.Errorf("the signal closes at %q, want %s (New York time of %s)", got, want, iso)
	}

	// My confirmations and an order's history speak the same time.
	tb.open("/confirmations")
	tb.waitJS(`document.querySelector('tbody tr time')`)
	if got := tb.text(`tbody tr time`); !exchangeClock.MatchString(got) {
		t.Errorf("My confirmations shows %q, want New York time", got)
	}
}

// whatIfRefusal: IBKR's what-if refusal ("No trading permissions.") shows
// in the dialog before anyone can press Confirm, and nothing is sent.
func (f *uiFlow) whatIfRefusal(t *testing.T) {
	f.publish(t, "NVDA", "181.40", nil)
	var before []ibkrsim.SimOrder
	f.env.simCall(t, http.MethodGet, "/sim/orders", nil, &before)
	f.env.simCall(t, http.MethodPost, "/sim/faults", map[string]any{
		"path": "/iserver/account/*/orders/whatif", "kind": "reject", "value": "No trading permissions.",
	}, nil)
	defer f.env.simCall(t, http.MethodDelete, "/sim/faults", nil, nil)

	tb := f.tab.on(t)
	tb.open("/")
	row := `tr[data-ticker=NVDA]`
	tb.waitJS(`document.querySelector('` + row + ` [data-action=confirm]')`)
	tb.click(row + ` [data-action=confirm]`)
	tb.waitJS(`document.querySelector('dialog[open] .form-alert:not([hidden])')`)
	if got := tb.text(`dialog[open] .form-alert`); !strings.Contains(got, "IBKR would refuse this order: No trading permissions.") {
		t.Errorf("the dialog's alert = %q, want IBKR's refusal", got)
	}
	if !eval[bool](tb, `document.querySelector('dialog[open] .btn-primary').disabled`) {
		t.Error("Confirm Buy is enabled although IBKR would refuse the order")
	}
	if !eval[bool](tb, `document.activeElement.classList.contains('form-alert')`) {
		t.Errorf("focus = %q, want the refusal", tb.activeElement())
	}
	tb.screenshot("whatif-refusal")
	tb.do(chromedp.KeyEvent(kb.Escape))
	tb.waitJS(`!document.querySelector('dialog')`)
	var after []ibkrsim.SimOrder
	f.env.simCall(t, http.MethodGet, "/sim/orders", nil, &after)
	if len(after) != len(before) {
		t.Errorf("orders at IBKR went from %d to %d after a refused what-if", len(before), len(after))
	}
}

// cutoffCountdown: the dialog counts down to the cut-off every second, and
// when it passes the dialog says so and Confirm goes off.
func (f *uiFlow) cutoffCountdown(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	closes := time.Now().Add(25 * time.Second).Truncate(time.Second)
	f.publish(t, "AMZN", "228.15", func(tb *tab) {
		tb.setValue(`[name=expires_at]`, closes.In(ny).Format("2006-01-02T15:04:05"))
	})
	tb := f.tab.on(t)
	tb.open("/")
	row := `tr[data-ticker=AMZN]`
	tb.waitJS(`document.querySelector('` + row + ` [data-action=confirm]')`)
	tb.click(row + ` [data-action=confirm]`)
	tb.waitJS(`document.querySelector('dialog[open] [data-fact=time-left]') && !document.querySelector('dialog[open] .btn-primary').disabled`)
	line := tb.text(`dialog[open] [data-fact=cutoff]`)
	if want := closes.In(ny).Format("Mon 15:04 MST"); !strings.Contains(line, "Confirmations close "+want) {
		t.Errorf("cut-off line = %q, want it at %s", line, want)
	}
	first := tb.text(`dialog[open] [data-fact=time-left]`)
	if !regexp.MustCompile(`^\d+ s$`).MatchString(first) {
		t.Errorf("time left = %q, want seconds", first)
	}
	tb.waitJS(`document.querySelector('dialog[open] [data-fact=time-left]').innerText !== ` + jsString(first))
	tb.screenshot("countdown")
	// At the cut-off the dialog closes the door itself.
	tb.waitJS(`document.querySelector('dialog[open] .form-alert:not([hidden])')`)
	if got := tb.text(`dialog[open] .form-alert`); !strings.Contains(got, "Confirmations for this signal have closed") {
		t.Errorf("alert at the cut-off = %q", got)
	}
	if !eval[bool](tb, `document.querySelector('dialog[open] .btn-primary').disabled`) {
		t.Error("Confirm Buy is still enabled after the cut-off")
	}
	if got := tb.text(`dialog[open] [data-fact=time-left]`); got != "0 s" {
		t.Errorf("time left after the cut-off = %q", got)
	}
	tb.do(chromedp.KeyEvent(kb.Escape))
	tb.waitJS(`!document.querySelector('dialog')`)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return `'` + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(s) + `'`
}
