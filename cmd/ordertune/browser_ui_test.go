package main

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// uiFlow is the state the scenarios of TestBrowserUI share: one admin who
// also trades, in one tab, on a server of its own.
type uiFlow struct {
	env  *browserEnv
	me   *person
	tab  *tab
	keys [2]*rsa.PrivateKey
	// newcomer signs up from the sign-up page in a tab of their own.
	newcomer    *person
	newcomerTab *tab
}

// TestBrowserUI checks what a demanding trader and an admin found
// confusing (issue 21): each scenario fails with the old behaviour.
func TestBrowserUI(t *testing.T) {
	f := &uiFlow{env: startBrowserEnv(t), me: &person{email: "ada@example.com", password: "correct horse battery"},
		newcomer: &person{email: "grace@example.com", password: "a brand new password"}}
	f.env.createUser(t, f.me, "admin")
	f.tab = f.env.newTab(t)
	f.newcomerTab = f.env.newTab(t)
	for i := range f.keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		f.keys[i] = k
	}
	f.tab.signIn(f.me, "/enroll")
	f.tab.enrol(f.me)
	for _, sc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"PublishFormErrors", f.publishFormErrors},
		{"SetupStepsInDialog", f.setupStepsInDialog},
		{"DashboardNoBroker", f.dashboardNoBroker},
		{"TestConnectionFieldErrors", f.testConnectionFieldErrors},
		{"ConfirmDialog", f.confirmDialog},
		{"NothingToSell", f.nothingToSell},
		{"ExchangeTimes", f.exchangeTimes},
		{"WhatIfRefusal", f.whatIfRefusal},
		{"CutoffCountdown", f.cutoffCountdown},
		{"DashboardPositions", f.dashboardPositions},
		{"Portfolio", f.portfolio},
		{"EmptyStates", f.emptyStates},
		{"AdminLogFiltersAndOrder", f.adminLogFiltersAndOrder},
		{"DeadEnds", f.deadEnds},
		{"PhoneMenuEscape", f.phoneMenuEscape},
		{"PhoneSignalCard", f.phoneSignalCard},
		{"SignUp", f.signUp},
		{"ResetTOTP", f.resetTOTP},
		{"QuietNetwork", f.quietNetwork},
	} {
		if !t.Run(sc.name, sc.run) {
			t.FailNow()
		}
	}
}

// publish fills the Publish form with an entry signal and submits it.
func (f *uiFlow) publish(t *testing.T, ticker, refClose string, extra func(tb *tab)) {
	tb := f.tab.on(t)
	tb.open("/admin/signals")
	tb.fillSignal(ticker, refClose, "4.5", "-3.1")
	if extra != nil {
		extra(tb)
	}
	tb.click(`form button[type=submit]`)
	tb.waitJS(`document.querySelector('.saved-msg').innerText === 'Published ` + ticker + `.'`)
}

// publishFormErrors: an empty form is answered at its fields, the cut-off
// is prefilled, and an exit hides the entry fields.
func (f *uiFlow) publishFormErrors(t *testing.T) {
	tb := f.tab.on(t)
	tb.open("/admin/signals")
	entry := eval[string](tb, `document.querySelector('[name=entry_date]').value`)
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	d, err := time.ParseInLocation("2006-01-02", entry, ny)
	if err != nil {
		t.Fatalf("entry date %q: %v", entry, err)
	}
	// In New York time, as every time the UI shows.
	want := d.Add(9*time.Hour + 28*time.Minute).Format("2006-01-02T15:04")
	if got := eval[string](tb, `document.querySelector('[name=expires_at]').value`); got != want {
		t.Errorf("Confirmations close at = %q, want the opening cut-off on the entry date, %s", got, want)
	}
	// Market on close moves it to the closing cut-off.
	tb.setValue(`[name=entry_mode]`, "signal_close")
	want = d.Add(15*time.Hour + 50*time.Minute).Format("2006-01-02T15:04")
	if got := eval[string](tb, `document.querySelector('[name=expires_at]').value`); got != want {
		t.Errorf("Confirmations close at for market on close = %q, want %s", got, want)
	}

	// Empty: every missing field is marked, and nothing speaks of JSON.
	// "Confirmations close at" may be left empty: the server then takes
	// the cut-off on the entry date.
	tb.setValue(`[name=expires_at]`, "")
	tb.click(`form button[type=submit]`)
	tb.waitJS(`document.querySelector('form .form-alert:not([hidden])')`)
	marked := eval[[]string](tb, `[...document.querySelectorAll('form .field.has-error')].map(e => e.dataset.field).sort()`)
	if diff := cmp.Diff([]string{"ref_close", "return_2d", "rsi2", "ticker"}, marked); diff != "" {
		t.Errorf("fields marked on an empty form (-want +got):\n%s", diff)
	}
	if got := tb.text(`form .form-alert`); strings.Contains(got, "JSON") {
		t.Errorf("the form says %q", got)
	}
	if got := tb.activeElement(); got != "input:ticker" {
		t.Errorf("focus after the errors = %q, want the ticker", got)
	}
	tb.screenshot("empty-form")

	// An exit signal has no entry date, entry mode or limit to set.
	tb.click(`input[name=kind][value=exit]`)
	for _, name := range []string{"entry_date", "entry_mode", "limit_price"} {
		if eval[bool](tb, `document.querySelector('[data-field=`+name+`]').checkVisibility()`) {
			t.Errorf("%s shows for an exit signal", name)
		}
	}
	if eval[string](tb, `document.querySelector('[name=expires_at]').value`) == "" {
		t.Error("Confirmations close at is empty after choosing an exit")
	}
	tb.screenshot("exit")
	tb.click(`input[name=kind][value=entry]`)
	if !eval[bool](tb, `document.querySelector('[data-field=entry_date]').checkVisibility()`) {
		t.Error("entry date hidden for an entry signal")
	}
}

// setupStepsInDialog: before any setup, Confirm Buy names both missing
// steps with links, and offers no Confirm button.
func (f *uiFlow) setupStepsInDialog(t *testing.T) {
	f.publish(t, "AAPL", "187.25", nil)
	tb := f.tab.on(t)
	tb.open("/")
	row := `tr[data-ticker=AAPL]`
	tb.waitJS(`document.querySelector('` + row + ` [data-action=confirm]')`)
	tb.click(row + ` [data-action=confirm]`)
	tb.waitJS(`document.querySelector('dialog[open] .setup-steps')`)
	links := eval[[]string](tb, `[...document.querySelectorAll('dialog[open] .setup-steps a')].map(a => a.getAttribute('href'))`)
	if diff := cmp.Diff([]string{"/settings/broker", "/settings/position-size"}, links); diff != "" {
		t.Errorf("missing steps in the dialog (-want +got):\n%s", diff)
	}
	if eval[bool](tb, `[...document.querySelectorAll('dialog[open] button')].some(b => b.innerText.startsWith('Confirm') && b.checkVisibility())`) {
		t.Error("the dialog offers Confirm before the broker and position size are set")
	}
	tb.screenshot("setup-steps")
	tb.do(chromedp.Click(`//dialog//a[@href='/settings/position-size']`))
	tb.waitPath("/settings/position-size")
	tb.click(`input[name=mode][value=dollars]`)
	tb.typeInto(`[name=value]`, "5000")
	tb.click(`button[type=submit]`)
	// Setting a position size from off is a raise: a fresh second factor.
	tb.stepUpThenWait(f.me, `document.querySelector('.saved-msg') && document.querySelector('.saved-msg').innerText === 'Saved.'`)
}

// testConnectionFieldErrors: Test Connection names a bad field by its
// label and marks it; Connect clears the old result and ends in a clear
// connected state.
func (f *uiFlow) testConnectionFieldErrors(t *testing.T) {
	tb := f.tab.on(t)
	tb.open("/settings/broker?mode=paper")
	u := f.env.simCredentials(t, f.keys, "DU1234567", true)
	tb.fillBroker(u)
	tb.setValue(`[name=signature_key_pem]`, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----")
	tb.click(`button[data-action=test]`)
	tb.waitJS(`document.querySelector('.test-region .test-result[data-ok=false]')`)
	hint := tb.text(`.test-region [data-step=credentials] .step-hint`)
	if !strings.Contains(hint, "Signature key (private, PEM):") || strings.Contains(tb.text(".test-region"), "signature_key_pem") {
		t.Errorf("credentials step hint = %q, want the field's label and no API name", hint)
	}
	tb.waitJS(`document.querySelector('[data-field=signature_key_pem] .field-error:not([hidden])')`)
	if got := tb.activeElement(); got != "textarea:signature_key_pem" {
		t.Errorf("focus after the failed test = %q, want the signature key", got)
	}
	tb.screenshot("test-field-error")

	// Connect: the failed result goes, the good set is saved and tested.
	tb.setValue(`[name=signature_key_pem]`, u.SignaturePrivateKeyPEM)
	tb.click(`button[data-action=save]`)
	tb.stepUpThenWait(f.me, `document.querySelector('.status-line .badge[data-status=connected]') && document.querySelector('.test-region .test-result[data-ok]')`)
	if got := eval[string](tb, `document.querySelector('.test-region .test-result').dataset.ok`); got != "true" {
		t.Errorf("test result after Connect: ok=%s, want the new, passing one", got)
	}
	if eval[bool](tb, `document.querySelector('.broker-form').checkVisibility()`) {
		t.Error("the empty credentials form still shows after a successful Connect")
	}
	if got := tb.activeElement(); strings.HasPrefix(got, "input:") || strings.HasPrefix(got, "textarea:") {
		t.Errorf("focus after Connect = %q, want it out of the (folded) form", got)
	}
	if strings.Contains(tb.text("main"), "limited_poa") {
		t.Error("the broker card shows the realm's internal name")
	}
	tb.screenshot("connected")
	// Replace credentials opens an empty form for a new set.
	tb.click(`button[data-action=replace]`)
	tb.waitJS(`document.querySelector('.broker-form').checkVisibility()`)
	if got := tb.activeElement(); got != "input:consumer_key" {
		t.Errorf("focus after Replace credentials = %q", got)
	}
}

// confirmDialog: focus stays on Cancel, so Enter cancels; a limit order
// shows both estimates; a confirm ends in a visible message with its status.
func (f *uiFlow) confirmDialog(t *testing.T) {
	tb := f.tab.on(t)
	tb.open("/")
	row := `tr[data-ticker=AAPL]`
	tb.waitJS(`document.querySelector('` + row + ` [data-action=confirm]')`)
	// Focused from the page: the row is re-rendered while statuses are
	// polled, so a node the test looked up can be gone by the key press.
	tb.waitJS(`(document.querySelector('` + row + ` [data-action=confirm]').focus(), document.activeElement.dataset.action === 'confirm')`)
	tb.do(chromedp.KeyEvent(kb.Enter))
	tb.waitJS(`document.querySelector('dialog[open] [data-fact=quantity]') && !document.querySelector('dialog[open] .btn-primary').disabled`)
	if got := tb.activeElement(); got != "button:Cancel" {
		t.Errorf("focus in the dialog = %q, want Cancel", got)
	}
	// A second Enter cancels: no order.
	tb.do(chromedp.KeyEvent(kb.Enter))
	tb.waitJS(`!document.querySelector('dialog')`)
	var orders []ibkrsim.SimOrder
	f.env.simCall(t, http.MethodGet, "/sim/orders", nil, &orders)
	if len(orders) != 0 {
		t.Fatalf("two Enter presses placed %d orders", len(orders))
	}

	// A limit order: the reference-close estimate is ref × quantity.
	f.publish(t, "MSFT", "1410.10", func(tb *tab) {
		tb.setValue(`[name=entry_mode]`, "next_open_limit")
		tb.typeInto(`[name=limit_price]`, "1405.00")
	})
	tb.open("/")
	tb.waitJS(`document.querySelector('tr[data-ticker=MSFT] [data-action=confirm]')`)
	tb.click(`tr[data-ticker=MSFT] [data-action=confirm]`)
	tb.waitJS(`document.querySelector('dialog[open] [data-fact=quantity]')`)
	facts := eval[map[string]string](tb, `Object.fromEntries([...document.querySelectorAll('dialog[open] .facts > div')].map(d => [d.querySelector('dt').innerText, d.querySelector('dd').innerText]))`)
	// $5,000 buys 3 shares at $1,410.10.
	for k, want := range map[string]string{
		"Quantity": "3 shares", "Reference close": "$1,410.10", "Limit price": "$1,405.00",
		"Estimated value (at reference close)": "$4,230.30", "Estimated value (at limit price)": "$4,215.00",
	} {
		if facts[k] != want {
			t.Errorf("dialog %s = %q, want %q", k, facts[k], want)
		}
	}
	tb.screenshot("limit-dialog")
	tb.do(chromedp.KeyEvent(kb.Escape))
	tb.waitJS(`!document.querySelector('dialog')`)

	// Confirm: a visible message says what was sent and its status.
	tb.click(row + ` [data-action=confirm]`)
	tb.waitJS(`document.querySelector('dialog[open] [data-fact=quantity]') && !document.querySelector('dialog[open] .btn-primary').disabled`)
	tb.do(chromedp.Click(`//dialog//button[normalize-space(.)='Confirm Buy']`))
	tb.waitJS(`!document.querySelector('dialog') && document.querySelector('.confirm-flash .notice')`)
	msg := tb.text(`.confirm-flash`)
	if !strings.Contains(msg, "Buy order for 26 AAPL sent to IBKR.") || !strings.Contains(msg, "Status: Submitted") {
		t.Errorf("message after confirming = %q, want the order and its status", msg)
	}
	tb.screenshot("confirmed")
	// The server caches the positions, without AAPL, right before the
	// fill: the dashboard's panel must still show the fill at once.
	tb.apiPositions()
	f.env.simCall(t, http.MethodPost, "/sim/auction/open", nil, nil)
	tb.waitJS(`document.querySelector('.confirm-flash .badge[data-status=filled]')`)
	f.panelShowsFill(t, tb)
}

// nothingToSell: an exit the user holds nothing for offers no Confirm
// Sell and says why; one with a filled entry does.
func (f *uiFlow) nothingToSell(t *testing.T) {
	exit := func(ticker, strategy string) {
		f.publish(t, ticker, "190.00", func(tb *tab) {
			tb.click(`input[name=kind][value=exit]`)
			tb.setValue(`[name=strategy]`, strategy)
		})
	}
	exit("AAPL", "I")  // the filled entry above was strategy I
	exit("TSLA", "II") // nothing held
	tb := f.tab.on(t)
	tb.open("/")
	tb.waitJS(`document.querySelectorAll('tr[data-ticker=TSLA]').length === 1`)
	if n := eval[int](tb, `document.querySelectorAll('tr[data-ticker=TSLA] [data-action=confirm]').length`); n != 0 {
		t.Error("Confirm Sell offered with nothing to sell")
	}
	if got := tb.text(`tr[data-ticker=TSLA] [data-action=nothing-to-sell]`); !strings.Contains(got, "Nothing to sell") {
		t.Errorf("exit without a position says %q", got)
	}
	if got := eval[[]string](tb, `[...document.querySelectorAll('tr[data-ticker=AAPL] [data-action=confirm]')].map(b => b.innerText)`); !cmp.Equal(got, []string{"Confirm Sell"}) {
		t.Errorf("AAPL rows offer %q, want one Confirm Sell for the held position", got)
	}
	tb.screenshot("exits")
}

// emptyStates: a filter with no rows says so, and offers the way back.
func (f *uiFlow) emptyStates(t *testing.T) {
	tb := f.tab.on(t)
	tb.open("/confirmations?status=cancelled")
	tb.waitJS(`document.querySelector('.empty-row')`)
	got := tb.text(".empty-row")
	if strings.Contains(got, "yet") || !strings.Contains(got, "Cancelled") {
		t.Errorf("filtered empty state = %q, want it to name the filter", got)
	}
	if n := eval[int](tb, `document.querySelectorAll('.empty-row a[href="/confirmations"]').length`); n != 1 {
		t.Error("the filtered empty state offers no way back to every status")
	}
}

// adminLogFiltersAndOrder: part of an e-mail finds the user, a reversed
// range is caught at its field with the table still there, the CSV names
// the user and starts with a BOM, and an order opens with its history.
func (f *uiFlow) adminLogFiltersAndOrder(t *testing.T) {
	tb := f.tab.on(t)
	tb.open("/admin/confirmations")
	tb.typeInto(`[name=user]`, "ADA@")
	tb.click(`.filters button[type=submit]`)
	tb.waitPath("/admin/confirmations?user=ADA%40")
	tb.waitJS(`document.querySelector('tbody tr[data-confirmation-id]')`)
	top := eval[float64](tb, `document.querySelector('.filters').getBoundingClientRect().height`)
	tb.setValue(`[name=from]`, "2026-02-01")
	tb.setValue(`[name=to]`, "2026-01-01")
	tb.click(`.filters button[type=submit]`)
	tb.waitJS(`document.querySelector('[data-field=to] .field-error:not([hidden])')`)
	if n := eval[int](tb, `document.querySelectorAll('tbody tr[data-confirmation-id]').length`); n == 0 {
		t.Error("the table went away with the error")
	}
	if n := eval[int](tb, `document.querySelectorAll('.filters .form-alert').length`); n != 0 {
		t.Error("the alert is inside the filter row")
	}
	if h := eval[float64](tb, `document.querySelector('.filters').getBoundingClientRect().height`); h > top*2 {
		t.Errorf("the filter row grew from %.0f to %.0f px with the error", top, h)
	}
	tb.screenshot("reversed-range")
	tb.setValue(`[name=from]`, "")
	tb.setValue(`[name=to]`, "")

	csv := tb.download(`a[data-action=csv]`)
	if !strings.HasPrefix(csv, "\uFEFFid,") || !strings.Contains(csv, ",user_email,") || !strings.Contains(csv, f.me.email) {
		t.Errorf("CSV = %q…, want a BOM, a user_email column and the e-mail", csv[:min(len(csv), 200)])
	}

	// An order opens from the log, with its history.
	id := eval[string](tb, `document.querySelector('tbody tr[data-confirmation-id]').dataset.confirmationId`)
	tb.click(`tbody tr[data-confirmation-id="` + id + `"] a`)
	tb.waitPath("/admin/confirmations/" + id)
	tb.waitJS(`document.querySelector('.timeline')`)
	if n := eval[int](tb, `document.querySelectorAll('.timeline li').length`); n == 0 {
		t.Error("the order opened from the log shows no history")
	}
	tb.screenshot("order")
}

// deadEnds: an unknown address shows a page, not JSON; enrolment can be
// left with Sign out.
func (f *uiFlow) deadEnds(t *testing.T) {
	tb := f.tab.on(t)
	tb.allowFailed("GET /no/such/page") // the page's own status is 404
	tb.open("/no/such/page")
	if got := tb.text("main h1"); got != "Page not found" {
		t.Errorf("unknown page heading = %q", got)
	}
	tb.screenshot("not-found")

	other := &person{email: "newbie@example.com", password: "another good password"}
	f.env.createUser(t, other, "subscriber")
	nt := f.env.newTab(t)
	nt.signIn(other, "/enroll")
	nt.waitJS(`document.querySelector('button[data-action=sign-out]')`)
	nt.click(`button[data-action=sign-out]`)
	nt.waitPath("/signin")
	if code := nt.fetchStatus("/api/v1/me"); code != http.StatusUnauthorized {
		t.Errorf("GET /me after signing out of enrolment = %d, want 401", code)
	}
}

// phoneMenuEscape: the phone menu closes on Escape, focus back on its button.
func (f *uiFlow) phoneMenuEscape(t *testing.T) {
	tb := f.tab.on(t)
	tb.do(chromedp.EmulateViewport(phoneWidth, phoneHeight))
	defer tb.do(chromedp.EmulateViewport(desktopWidth, desktopHeight))
	tb.open("/")
	tb.click(`.menu-toggle`)
	tb.waitJS(`document.getElementById('primary-nav').classList.contains('open')`)
	tb.do(chromedp.KeyEvent(kb.Escape))
	tb.waitJS(`!document.getElementById('primary-nav').classList.contains('open')`)
	if got := eval[string](tb, `document.activeElement.className + ' ' + document.activeElement.getAttribute('aria-expanded')`); got != "btn menu-toggle false" {
		t.Errorf("after Escape the focus is on %q, want the collapsed menu button", got)
	}
}

// quietNetwork: the landing page of a signed-out browser, the dashboard
// and signing out make no failed request (no 401 for /me, no refused
// live-price call, nothing aborted).
func (f *uiFlow) quietNetwork(t *testing.T) {
	fresh := f.env.newTab(t)
	failed := failedRequests(fresh)
	fresh.open("/")
	fresh.waitPath("/signin")
	if got := failed(); len(got) != 0 {
		t.Errorf("a signed-out landing made failed requests: %q", got)
	}

	tb := f.tab.on(t)
	failed = failedRequests(tb)
	tb.open("/")
	tb.waitJS(`document.querySelector('tr[data-ticker] .live-price[data-state=live]')`)
	tb.click(`.account-wide button`)
	tb.waitPath("/signin")
	if got := failed(); len(got) != 0 {
		t.Errorf("the dashboard and signing out made failed requests: %q", got)
	}
}
