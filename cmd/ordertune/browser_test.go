package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// uuidRE matches a random (version 4) UUID, what crypto.randomUUID makes.
var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// browserFlow is the state the scenarios of TestBrowser share, in order:
// the people, their tabs, and the confirmation they make.
type browserFlow struct {
	env              *browserEnv
	admin, sub       *person
	adminTab, subTab *tab
	keys             [2]*rsa.PrivateKey // the simulated consumers' RSA keys, made once
	confirmationID   string
}

// TestBrowser runs the UI's acceptance flow in one browser: each subtest is
// one scenario, and later ones build on what earlier ones did.
func TestBrowser(t *testing.T) {
	f := &browserFlow{
		env:   startBrowserEnv(t),
		admin: &person{email: "admin@example.com", password: "correct horse battery"},
		sub:   &person{email: "sam@example.com", password: "subscriber password 1"},
	}
	f.env.createUser(t, f.admin, "admin")
	f.adminTab = f.env.newTab(t)
	f.subTab = f.env.newTab(t)
	for i := range f.keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		f.keys[i] = k
	}
	for _, sc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"SignInPage", f.signInPage},
		{"AdminEnrols", f.adminEnrols},
		{"AdminManagesUsers", f.adminManagesUsers},
		{"SubscriberEnrols", f.subscriberEnrols},
		{"SubscriberRefusedAdminPages", f.subscriberRefusedAdminPages},
		{"SignInWithCode", f.signInWithCode},
		{"SignInWithRecoveryCode", f.signInWithRecoveryCode},
		{"PhoneMenu", f.phoneMenu},
		{"BrokerTestFails", f.brokerTestFails},
		{"BrokerConnects", f.brokerConnects},
		{"PositionSize", f.positionSize},
		{"ConfirmAndFill", f.confirmAndFill},
		{"LivePriceValues", f.livePriceValues},
		{"LivePricePausesWhenHidden", f.livePricePausesWhenHidden},
		{"ConfirmFailsWithIBKRsMessage", f.confirmFailsWithIBKRsMessage},
		{"MyConfirmations", f.myConfirmations},
		{"CancelOrder", f.cancelOrder},
		{"RiskLimits", f.riskLimits},
		{"UseLiveForOrders", f.useLiveForOrders},
		{"ChangePassword", f.changePassword},
		{"AdminLogAndCSV", f.adminLogAndCSV},
		{"SignOut", f.signOut},
		{"AdminSessionsAndAudit", f.adminSessionsAndAudit},
		{"AdminWithdrawsSignal", f.adminWithdrawsSignal},
		{"AdminTokens", f.adminTokens},
		{"NotificationsAndWebhooks", f.notificationsAndWebhooks},
		{"ForgotPassword", f.forgotPassword},
	} {
		if !t.Run(sc.name, sc.run) {
			// Later scenarios need what this one should have done.
			t.FailNow()
		}
	}
}

// brokerTestFails shows a 422 at its field, a Test Connection failing with its hint, pending activation and delete.
func (f *browserFlow) brokerTestFails(t *testing.T) {
	tb := f.subTab.on(t)
	tb.do(chromedp.Click(`//nav//a[normalize-space(.)='Broker']`))
	tb.waitPath("/settings/broker")
	if got := tb.text(".status-line .badge"); got != "Not connected" {
		t.Errorf("status before any credentials = %q", got)
	}
	labels := eval[[]string](tb, `[...document.querySelectorAll('.broker-form input, .broker-form textarea')].map(i => i.labels.length ? i.labels[0].innerText : 'UNLABELLED ' + i.name)`)
	for _, l := range labels {
		if strings.HasPrefix(l, "UNLABELLED") {
			t.Errorf("broker form: %s", l)
		}
	}
	tb.screenshot("empty")

	// A malformed key: the server's 422 names the field, and the page
	// shows it there.
	u := f.env.simCredentials(t, f.keys, "DU7654321", false)
	tb.fillBroker(u)
	tb.setValue(`[name=signature_key_pem]`, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----")
	f.env.endStepUps(t)
	tb.click(`button[data-action=save]`)
	f.stepUpDialog(tb) // saving credentials is sensitive: a fresh code first
	tb.waitJS(`document.querySelector('[data-field=signature_key_pem] .field-error:not([hidden])')`)
	if got := tb.activeElement(); got != "textarea:signature_key_pem" {
		t.Errorf("focus after the 422 = %q, want the signature key", got)
	}
	tb.screenshot("field-error")

	// A consumer IBKR does not know yet: the handshake step fails with
	// the words users know and a hint.
	tb.setValue(`[name=signature_key_pem]`, u.SignaturePrivateKeyPEM)
	tb.click(`button[data-action=test]`)
	tb.waitJS(`document.querySelector('.test-region .test-result[data-ok]')`)
	steps := tb.testSteps()
	if diff := cmp.Diff(map[string]bool{"credentials": true, "live_session_token": false}, steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if got := tb.text(`.test-region [data-step=live_session_token] .step-msg`); !strings.Contains(got, "Consumer key not recognized") {
		t.Errorf("handshake step message = %q", got)
	}
	if got := tb.text(`.test-region [data-step=live_session_token] .step-hint`); got == "" {
		t.Error("the failed step shows no hint")
	}
	if got := tb.text(`.test-region [data-step=live_session_token] .step-ms`); !strings.HasSuffix(got, " ms") {
		t.Errorf("the step's duration = %q", got)
	}
	tb.screenshot("consumer-not-recognized")

	// Saved, the set is tested at once and shows as pending activation.
	tb.click(`button[data-action=save]`)
	tb.waitJS(`document.querySelector('.status-line .badge[data-status=pending_activation]')`)
	if got := tb.text(".status-line .badge"); got != "Pending activation" {
		t.Errorf("badge = %q", got)
	}
	tb.screenshot("pending-activation")

	// Delete asks first, in a dialog, then forgets the set.
	tb.click(`button[data-action=delete]`)
	tb.waitJS(`document.querySelector('dialog[open]')`)
	tb.screenshot("delete-dialog")
	tb.do(chromedp.Click(`//dialog//button[starts-with(normalize-space(.), 'Delete')]`))
	tb.waitJS(`!document.querySelector('dialog') && document.querySelector('.status-line .badge') && document.querySelector('.status-line .badge').innerText === 'Not connected'`)
}

// brokerConnects tests and saves simulator-registered paper credentials.
func (f *browserFlow) brokerConnects(t *testing.T) {
	tb := f.subTab.on(t)
	tb.open("/settings/broker?mode=paper")
	u := f.env.simCredentials(t, f.keys, "DU1234567", true)
	tb.fillBroker(u)
	tb.click(`button[data-action=test]`)
	tb.waitJS(`document.querySelector('.test-region .test-result[data-ok]')`)
	want := map[string]bool{"credentials": true, "live_session_token": true, "brokerage_session": true, "accounts": true, "trading_permissions": true}
	if diff := cmp.Diff(want, tb.testSteps()); diff != "" {
		t.Errorf("steps of a good set (-want +got):\n%s", diff)
	}
	f.env.endStepUps(t)
	tb.click(`button[data-action=save]`)
	tb.stepUp(f.sub)
	tb.waitJS(`document.querySelector('.status-line .badge[data-status=connected]')`)
	if got := tb.text(".facts"); !strings.Contains(got, u.ConsumerKey) || !strings.Contains(got, "4567") || strings.Contains(got, u.AccountID) {
		t.Errorf("saved connection facts = %q: want the consumer key and the masked account", got)
	}
	if n := eval[int](tb, `[...document.querySelectorAll('.broker-form input, .broker-form textarea')].filter(e => e.value).length`); n != 0 {
		t.Errorf("%d fields still hold pasted secrets after saving", n)
	}
	tb.screenshot("connected")

	// The switch shows the other credential set, and orders keep going
	// to the paper account until a live one exists.
	tb.click(`label[for=mode-live]`)
	tb.waitJS(`document.getElementById('conn-h').innerText === 'Live connection'`)
	if got := tb.text(".status-line .badge"); got != "Not connected" {
		t.Errorf("live badge = %q", got)
	}
	if got := tb.text("main"); !strings.Contains(got, "Orders currently go to your paper account.") {
		t.Errorf("the live view does not say where orders go:\n%s", got)
	}
	tb.screenshot("live")
	tb.click(`label[for=mode-paper]`)
	tb.waitJS(`document.getElementById('conn-h').innerText === 'Paper connection'`)
}

// positionSize turns the position size off, shows a 422 at its field, and sets $5000.
func (f *browserFlow) positionSize(t *testing.T) {
	tb := f.subTab.on(t)
	tb.do(chromedp.Click(`//nav//a[normalize-space(.)='Position size']`))
	tb.waitPath("/settings/position-size")
	if eval[bool](tb, `document.querySelector('[data-field=value]').checkVisibility()`) {
		t.Error("the amount shows while the position size is off")
	}
	tb.click(`button[type=submit]`)
	tb.waitJS(`document.querySelector('.saved-msg').innerText === 'Saved.'`)
	tb.click(`input[name=mode][value=dollars]`)
	tb.typeInto(`[name=value]`, "lots")
	tb.click(`button[type=submit]`)
	tb.waitJS(`document.querySelector('[data-field=value] .field-error:not([hidden])')`)
	tb.screenshot("error")
	tb.typeInto(`[name=value]`, "5000")
	f.env.endStepUps(t)
	tb.click(`button[type=submit]`)
	tb.stepUp(f.sub) // from off to $5000 raises it
	tb.waitJS(`document.querySelector('.saved-msg').innerText === 'Saved.'`)
	tb.open("/settings/position-size")
	if got := eval[[]string](tb, `[document.querySelector('input[name=mode]:checked').value, document.querySelector('[name=value]').value]`); strings.Join(got, " ") != "dollars 5000" {
		t.Errorf("after reload: %q, want dollars 5000", got)
	}
	tb.screenshot("saved")
}

// confirmAndFill publishes a signal, confirms it once from the keyboard-checked dialog and watches it fill after the opening auction.
func (f *browserFlow) confirmAndFill(t *testing.T) {
	at := f.adminTab.on(t)
	at.do(chromedp.Click(`//nav//a[normalize-space(.)='Publish']`))
	at.waitPath("/admin/signals")
	at.fillSignal("aapl", "187.25", "4.5", "-3.1") // lower case on purpose: it is published as AAPL
	at.screenshot("publish")
	at.click(`form button[type=submit]`)
	at.waitJS(`document.querySelector('.saved-msg').innerText === 'Published AAPL.'`)
	at.waitJS(`[...document.querySelectorAll('tbody th')].some(th => th.innerText === 'AAPL')`)
	at.screenshot("published")
	// The admin has no broker connected: the Last column shows a muted
	// dash and the page stays as it was.
	at.open("/")
	at.waitJS(`document.querySelector('tr[data-ticker=AAPL] [data-action=confirm]')`)
	f.noBrokerLivePrice(at, `tr[data-ticker=AAPL]`)
	at.screenshot("signals-no-broker")

	tb := f.subTab.on(t)
	tb.do(chromedp.Click(`//nav//a[normalize-space(.)='Signals']`))
	tb.waitPath("/")
	row := `tr[data-ticker=AAPL]`
	tb.waitJS(`document.querySelector('` + row + ` [data-action=confirm]')`)
	cells := eval[[]string](tb, `[...document.querySelectorAll('`+row+` > *')].map(c => c.innerText.trim())`)
	if len(cells) < 10 || cells[4] != "$187.25" || cells[6] != "4.5" || cells[7] != "−3.1 %" || cells[8] != "Market on open" {
		t.Errorf("signal row = %q", cells)
	}
	// The Last column fills in from the subscriber's own IBKR session,
	// without a reload, and keeps moving.
	first := f.checkLivePrice(tb, row+` .live-price`, "187.25")
	tb.waitJS(`Number(document.querySelector('` + row + ` .live-price').dataset.updated) > ` + first)
	f.checkLivePrice(tb, row+` .live-price`, "187.25")
	tb.screenshot("signals")

	// Keyboard only: Enter opens the dialog, focus stays on Cancel once
	// the preview is in (a second Enter must not place an order), Escape
	// closes it and focus returns to the row.
	tb.waitJS(`(document.querySelector('` + row + ` [data-action=confirm]').focus(), document.activeElement.dataset.action === 'confirm')`)
	tb.do(chromedp.KeyEvent(kb.Enter))
	tb.waitJS(`document.querySelector('dialog[open] [data-fact=quantity]') && document.activeElement.innerText === 'Cancel' && document.querySelector('dialog[open]').contains(document.activeElement)`)
	tb.do(chromedp.KeyEvent(kb.Escape))
	tb.waitJS(`!document.querySelector('dialog') && document.activeElement.dataset.action === 'confirm'`)

	tb.click(row + ` [data-action=confirm]`)
	tb.waitJS(`document.querySelector('dialog[open] [data-fact=quantity]')`)
	tb.waitJS(`document.querySelector('dialog[open] [data-fact=live-price] .live-price[data-price]')`)
	f.checkLivePrice(tb, `dialog[open] [data-fact=live-price] .live-price`, "187.25")
	facts := eval[map[string]string](tb, `Object.fromEntries([...document.querySelectorAll('dialog[open] .facts > div')].map(d => [d.querySelector('dt').innerText, d.querySelector('dd').innerText]))`)
	if live := facts["Live price"]; !strings.Contains(live, "vs reference close") || !strings.Contains(live, "Bid $") || !strings.Contains(live, "· ask $") {
		t.Errorf("live price in the dialog = %q, want the price, its change from the reference close, bid and ask", live)
	}
	wantFacts := map[string]string{
		"Side": "Buy", "Order type": "Market at the open (MKT, OPG)", "Limit price": "None", "Quantity": "26 shares",
		"Reference close": "$187.25", "Live price": facts["Live price"],
		"Estimated value (at reference close)": "$4,868.50", "Broker": "Interactive Brokers", "Mode": "Paper", "Account": facts["Account"],
		// IBKR's what-if (the simulator's fixed pricing): 26 shares at
		// 187.25, USD 1 minimum commission, 50 % initial margin.
		"Commission": "$1.00", "Initial margin change": "$2,434.25", "Equity with loan after": "$999,999.00",
	}
	if diff := cmp.Diff(wantFacts, facts); diff != "" {
		t.Errorf("confirm dialog (-want +got):\n%s", diff)
	}
	if acct := facts["Account"]; !strings.HasSuffix(acct, "4567") || strings.Contains(acct, "DU1234567") {
		t.Errorf("account in the dialog = %q, want it masked", acct)
	}
	tb.screenshot("confirm-dialog")

	// Watch what the page sends: one confirm, carrying an Idempotency-Key.
	nctx, stopWatching := context.WithCancel(tb.ctx)
	sent := chromedp.Events(nctx, network.RequestWillBeSent)
	var confirms []network.Headers
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ev, err := range sent {
			if err != nil {
				return
			}
			if ev.Request.Method == http.MethodPost && strings.HasSuffix(ev.Request.URL, "/confirm") {
				confirms = append(confirms, ev.Request.Headers)
			}
		}
	}()

	// Two clicks in the same instant: the button disables on the first,
	// and the one idempotency key covers any retry.
	if !eval[bool](tb, `(() => { const b = [...document.querySelectorAll('dialog[open] button')].find(b => b.innerText.startsWith('Confirm')); b.click(); const d = b.disabled; b.click(); return d; })()`) {
		t.Error("Confirm did not disable on the first click")
	}
	tb.waitJS(`!document.querySelector('dialog[open]') && document.querySelector('` + row + ` .badge')`)
	status := tb.text(row + ` .badge`)
	if status != "Submitted" && status != "Filled" {
		t.Errorf("status right after confirming = %q, want Submitted", status)
	}
	stopWatching()
	<-watched
	if len(confirms) != 1 {
		t.Errorf("the page sent %d confirm requests, want 1", len(confirms))
	} else if key, _ := confirms[0]["Idempotency-Key"].(string); !uuidRE.MatchString(key) {
		t.Errorf("Idempotency-Key = %q, want a random UUID", key)
	}
	href := eval[string](tb, `document.querySelector('`+row+` a.status-link').getAttribute('href')`)
	f.confirmationID = strings.TrimPrefix(href, "/confirmations/")
	tb.screenshot("submitted")

	var orders []ibkrsim.SimOrder
	f.env.simCall(t, http.MethodGet, "/sim/orders", nil, &orders)
	if len(orders) != 1 || orders[0].COID != f.confirmationID || orders[0].Side != "BUY" || orders[0].Quantity != 26 || orders[0].TIF != "OPG" {
		t.Fatalf("orders at the simulator: %+v, want one BUY 26 OPG with cOID %s", orders, f.confirmationID)
	}

	f.env.simCall(t, http.MethodPost, "/sim/auction/open", nil, nil)
	// No reload: the page polls until the row settles.
	tb.waitJS(`document.querySelector('` + row + ` .badge[data-status=filled]')`)
	if got := tb.text(row + ` .status-cell`); !strings.Contains(got, "26 @ $") {
		t.Errorf("filled status cell = %q, want the fill", got)
	}
	tb.screenshot("filled")

	// The bell counts the fill without a reload, and the list names it.
	tb.waitJS(`Number(document.querySelector('.bell').dataset.unread) >= 2`) // submitted and filled
	tb.click(`.bell`)
	tb.waitPath("/notifications")
	tb.waitJS(`document.querySelector('.notification.unread[data-type="order.filled"]')`)
	if got := tb.text(`.notification[data-type="order.filled"] p`); !strings.Contains(got, "BUY 26 AAPL") {
		t.Errorf("the fill's notification says %q, want BUY 26 AAPL", got)
	}
}

// confirmFailsWithIBKRsMessage confirms a limit order IBKR questions and shows its words.
func (f *browserFlow) confirmFailsWithIBKRsMessage(t *testing.T) {
	at := f.adminTab.on(t)
	at.open("/admin/signals")
	at.fillSignal("MSFT", "410.10", "7.25", "-2")
	at.setValue(`[name=entry_mode]`, "next_open_limit")
	at.typeInto(`[name=limit_price]`, "405.00")
	at.click(`form button[type=submit]`)
	at.waitJS(`document.querySelector('.saved-msg').innerText === 'Published MSFT.'`)

	// IBKR asks a question Ordertune has no policy for: the order must
	// not go through, and the user reads IBKR's own words.
	f.env.simCall(t, http.MethodPost, "/sim/faults", map[string]any{
		"path": "/iserver/account/*/orders", "kind": "reply_question", "value": "o999", "count": 1,
	}, nil)
	tb := f.subTab.on(t)
	tb.open("/")
	row := `tr[data-ticker=MSFT]`
	tb.waitJS(`document.querySelector('` + row + ` [data-action=confirm]')`)
	if got := tb.text(row + ` > :nth-child(10)`); got != "$405.00" {
		t.Errorf("limit cell = %q", got)
	}
	tb.click(row + ` [data-action=confirm]`)
	tb.waitJS(`document.querySelector('dialog[open] [data-fact=quantity]')`)
	if got := tb.text(`dialog[open] .facts`); !strings.Contains(got, "Limit at the open (LMT, OPG)") || !strings.Contains(got, "$405.00") {
		t.Errorf("limit order dialog = %q", got)
	}
	tb.do(chromedp.Click(`//dialog//button[normalize-space(.)='Confirm Buy']`))
	tb.waitJS(`document.querySelector('dialog[open] .form-alert:not([hidden])') && document.querySelector('` + row + ` .badge[data-status=failed]')`)
	if got := tb.text(`dialog[open] .form-alert`); !strings.Contains(got, "Are you sure you want to submit this order?") {
		t.Errorf("the dialog says %q, want IBKR's question text", got)
	}
	tb.screenshot("refused-dialog")
	tb.do(chromedp.Click(`//dialog//button[normalize-space(.)='Close']`))
	tb.waitJS(`!document.querySelector('dialog')`)
	if got := tb.text(row + ` .status-error`); !strings.Contains(got, "Are you sure you want to submit this order?") {
		t.Errorf("failed row says %q, want IBKR's question text", got)
	}
	// A failed confirmation may be tried again.
	if n := eval[int](tb, `document.querySelectorAll('`+row+` [data-action=confirm]').length`); n != 1 {
		t.Errorf("no Confirm button after a failure")
	}
	// With the live price column and IBKR's message, the table still fits
	// a desktop screen: nothing hides behind a horizontal scroll.
	if w := eval[[]int](tb, `(() => { const e = document.querySelector('.signals-region .table-wrap'); return [e.scrollWidth, e.clientWidth]; })()`); w[0] > w[1] {
		t.Errorf("signals table is %d px wide in a %d px box at %d px", w[0], w[1], desktopWidth)
	}
	tb.screenshot("failed")
}

// myConfirmations finds the filled order and its status history.
func (f *browserFlow) myConfirmations(t *testing.T) {
	tb := f.subTab.on(t)
	tb.do(chromedp.Click(`//nav//a[normalize-space(.)='My confirmations']`))
	tb.waitPath("/confirmations")
	tb.waitJS(`document.querySelector('tr[data-confirmation-id="` + f.confirmationID + `"] .badge[data-status=filled]')`)
	tb.screenshot("list")
	tb.click(`tr[data-confirmation-id="` + f.confirmationID + `"] a`)
	tb.waitPath("/confirmations/" + f.confirmationID)
	tb.waitJS(`document.querySelector('.timeline')`)
	history := eval[[]string](tb, `[...document.querySelectorAll('.timeline .badge')].map(b => b.dataset.status)`)
	if len(history) < 2 || history[len(history)-1] != "filled" || !slices.Contains(history, "submitted") {
		t.Errorf("status history = %q, want submitted … filled", history)
	}
	tb.screenshot("detail")
}

// adminLogAndCSV filters the admin log to the order and downloads the CSV.
func (f *browserFlow) adminLogAndCSV(t *testing.T) {
	tb := f.adminTab.on(t)
	tb.do(chromedp.Click(`//nav//a[normalize-space(.)='Log']`))
	tb.waitPath("/admin/confirmations")
	tb.typeInto(`[name=user]`, f.sub.email)
	tb.typeInto(`[name=ticker]`, "aapl")
	tb.click(`.filters button[type=submit]`)
	tb.waitPath("/admin/confirmations?user=sam%40example.com&ticker=AAPL")
	tb.waitJS(`document.querySelector('tr[data-confirmation-id="` + f.confirmationID + `"] .badge[data-status=filled]')`)
	tb.screenshot("log")

	csv := tb.download(`a[data-action=csv]`)
	// A byte order mark first, so spreadsheets read it as UTF-8.
	if !strings.Contains(csv, f.confirmationID) || !strings.Contains(csv, "filled") || !strings.HasPrefix(csv, "\uFEFFid,") {
		t.Errorf("downloaded CSV does not hold the filled confirmation %s:\n%s", f.confirmationID, csv)
	}
}

// adminSessionsAndAudit shows the IBKR session health and verifies the audit chain.
func (f *browserFlow) adminSessionsAndAudit(t *testing.T) {
	tb := f.adminTab.on(t)
	tb.do(chromedp.Click(`//nav//a[normalize-space(.)='Sessions']`))
	tb.waitPath("/admin/sessions")
	tb.waitJS(`document.querySelector('main table')`)
	if got := tb.text("main tbody"); !strings.Contains(got, f.sub.email) {
		t.Errorf("sessions table = %q, want the subscriber's session", got)
	}
	tb.screenshot("sessions")
	tb.do(chromedp.Click(`//nav//a[normalize-space(.)='Audit']`))
	tb.waitPath("/admin/audit")
	tb.click(`button[data-action=verify]`)
	tb.waitJS(`document.querySelector('.verify-region [data-ok]')`)
	if got := eval[string](tb, `document.querySelector('.verify-region [data-ok]').dataset.ok`); got != "true" {
		t.Errorf("audit verification shows ok=%s: %s", got, tb.text(".verify-region"))
	}
	tb.screenshot("audit")
}

// adminWithdrawsSignal withdraws the MSFT signal; it leaves the open list.
func (f *browserFlow) adminWithdrawsSignal(t *testing.T) {
	tb := f.adminTab.on(t)
	tb.open("/admin/signals")
	tb.waitJS(`document.querySelector('button[aria-label^="Withdraw MSFT"]')`)
	tb.click(`button[aria-label^="Withdraw MSFT"]`)
	tb.waitJS(`!document.querySelector('button[aria-label^="Withdraw MSFT"]') && document.querySelector('button[aria-label^="Withdraw AAPL"]')`)
	tb.open("/")
	tb.waitJS(`document.querySelector('tr[data-ticker=AAPL]')`)
	if n := eval[int](tb, `document.querySelectorAll('tr[data-ticker=MSFT]').length`); n != 0 {
		t.Error("the withdrawn signal is still listed as open")
	}
}

// stepUpDialog checks the step-up dialog a sensitive action opened: focus
// in its code field, a wrong code shown at the field (the dialog stays),
// Cancel refusing the action with the server's message, and then, on the
// action's second try, a recovery code letting it through.
func (f *browserFlow) stepUpDialog(tb *tab) {
	t := tb.t
	t.Helper()
	tb.waitJS(`document.querySelector('dialog#step-up[open]') && document.activeElement && document.activeElement.name === 'code'`)
	tb.screenshot("step-up")
	tb.typeInto(`#step-up [name=code]`, "000000")
	tb.do(chromedp.Click(`//dialog[@id='step-up']//button[normalize-space(.)='Confirm']`))
	tb.waitJS(`document.querySelector('#step-up [data-field=code] .field-error:not([hidden])')`)
	if got := tb.activeElement(); got != "input:code" {
		t.Errorf("focus after a wrong step-up code = %q, want the code field", got)
	}
	tb.do(chromedp.Click(`//dialog[@id='step-up']//button[normalize-space(.)='Cancel']`))
	tb.waitJS(`!document.querySelector('dialog#step-up') && document.querySelector('[role=alert]:not([hidden]), .form-alert:not([hidden])')`)
	if got := tb.text("main"); !strings.Contains(got, "fresh two-factor code") {
		t.Errorf("after cancelling the step-up the page does not say why nothing was saved:\n%s", got)
	}
	tb.click(`button[data-action=save]`)
	tb.stepUp(f.sub)
}
