package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/go-cmp/cmp"
)

// Browser scenarios of signing in, 2FA and roles.

// signInPage checks the sign-in page: labels, Tab order, visible focus, errors next to their fields and the server's detail.
func (f *browserFlow) signInPage(t *testing.T) {
	tb := f.env.newTab(t)
	tb.open("/")
	if got := eval[string](tb, `location.pathname`); got != "/signin" {
		t.Fatalf("signed out, / went to %q, want /signin", got)
	}
	// Every control has a visible label tied to it.
	labels := eval[[]string](tb, `[...document.querySelectorAll('main input, main select, main textarea')].map(i => i.labels.length ? i.labels[0].innerText : 'UNLABELLED ' + i.name)`)
	if strings.Join(labels, "|") != "E-mail|Password" {
		t.Errorf("labelled fields = %q, want E-mail|Password", labels)
	}
	tb.screenshot("empty")

	// The contrast check itself finds pale text.
	eval[bool](tb, `(() => { const p = document.createElement('p'); p.id = 'pale'; p.textContent = 'pale'; p.style.color = '#ccc'; document.querySelector('main').append(p); return true; })()`)
	if low := eval[[]string](tb, contrastCheck); len(low) != 1 || !strings.Contains(low[0], `"pale"`) {
		t.Errorf("contrast check on pale text = %q, want exactly it", low)
	}
	eval[bool](tb, `(document.getElementById('pale').remove(), true)`)
	// And the name check finds an unlabelled field.
	eval[bool](tb, `(() => { const i = document.createElement('input'); i.name = 'stray'; document.querySelector('main').append(i); return true; })()`)
	if got := eval[[]string](tb, nameCheck); len(got) != 1 || got[0] != "unlabelled field stray" {
		t.Errorf("name check with an unlabelled field = %q", got)
	}
	eval[bool](tb, `(document.querySelector('[name=stray]').remove(), true)`)

	// Keyboard order: skip link, e-mail, password, the button.
	var order []string
	for range 4 {
		tb.pressTab(false)
		order = append(order, tb.activeElement())
	}
	want := []string{"a:Skip to content", "input:email", "input:password", "button:Sign in"}
	if strings.Join(order, "|") != strings.Join(want, "|") {
		t.Errorf("Tab order = %q, want %q", order, want)
	}
	// The focused control is visibly outlined.
	if w := eval[string](tb, `getComputedStyle(document.activeElement).outlineStyle`); w == "none" {
		t.Error("the focused button has no visible outline")
	}

	// Enter on the empty form: each field says what is missing, next to it.
	tb.do(chromedp.KeyEvent(kb.Enter))
	tb.waitJS(`document.querySelectorAll('.field-error:not([hidden])').length === 2`)
	if got := tb.activeElement(); got != "input:email" {
		t.Errorf("focus after a failed submit = %q, want the first invalid field", got)
	}
	if got := eval[string](tb, `document.getElementById(document.querySelector('[name=email]').getAttribute('aria-describedby').split(' ').pop()).innerText`); !strings.Contains(got, "Enter your e-mail") {
		t.Errorf("e-mail error (by aria-describedby) = %q", got)
	}
	tb.screenshot("missing-fields")

	// A wrong password: the page shows the server's problem detail.
	_, detail := f.env.apiProblem(t, http.MethodPost, "/auth/login", map[string]string{"email": "nobody@example.com", "password": "wrong password 1"})
	if detail == "" {
		t.Fatal("the API's problem has no detail")
	}
	tb.typeInto(`[name=email]`, "nobody@example.com")
	tb.typeInto(`[name=password]`, "wrong password 1")
	tb.click(`button[type=submit]`)
	tb.waitJS(`document.querySelector('.form-alert:not([hidden])')`)
	if got := tb.text(".form-alert"); !strings.Contains(strings.ToLower(got), strings.ToLower(detail)) {
		t.Errorf("alert = %q, want the server's detail %q", got, detail)
	}
	if got := eval[bool](tb, `document.activeElement.classList.contains('form-alert')`); !got {
		t.Errorf("focus after a server error is on %s, want the alert", tb.activeElement())
	}
	tb.screenshot("error")
}

// adminEnrols signs the first admin in and walks through 2FA enrolment.
func (f *browserFlow) adminEnrols(t *testing.T) {
	tb := f.adminTab.on(t)
	tb.signIn(f.admin, "/enroll")
	tb.enrol(f.admin)
	want := []string{"Signals", "My confirmations", "Portfolio", "Broker", "Position size", "Risk", "Password", "Notifications", "Webhooks", "Log", "Users", "Sessions", "Publish", "Audit", "Tokens", "Platform risk"}
	if diff := cmp.Diff(want, tb.navLinks()); diff != "" {
		t.Errorf("admin navigation (-want +got):\n%s", diff)
	}
}

// adminManagesUsers creates the subscriber (after a 422 shown at its field) and disables a third account.
func (f *browserFlow) adminManagesUsers(t *testing.T) {
	tb := f.adminTab.on(t)
	tb.do(chromedp.Click(`//nav//a[normalize-space(.)='Users']`))
	tb.waitPath("/admin/users")
	tb.waitJS(`document.querySelector('tr[data-user-id]')`)

	// Creating a user is an admin write: it asks for a fresh code first,
	// then goes on. The server's per-field error lands next to the
	// password field.
	f.env.endStepUps(t)
	tb.typeInto(`form [name=email]`, f.sub.email)
	tb.typeInto(`form [name=password]`, "short")
	tb.click(`form button[type=submit]`)
	tb.stepUp(f.admin)
	tb.waitJS(`document.querySelector('[data-field=password] .field-error:not([hidden])')`)
	if got := tb.text(`[data-field=password] .field-error`); !strings.Contains(got, "8 to 128 characters") {
		t.Errorf("password error = %q, want the server's message", got)
	}
	if got := tb.activeElement(); got != "input:password" {
		t.Errorf("focus after the 422 = %q, want the password field", got)
	}
	if got := eval[string](tb, `document.querySelector('[name=password]').getAttribute('aria-invalid')`); got != "true" {
		t.Errorf("password aria-invalid = %q", got)
	}
	tb.screenshot("field-error")

	tb.typeInto(`form [name=password]`, f.sub.password)
	tb.click(`form button[type=submit]`)
	tb.waitJS(fmt.Sprintf(`[...document.querySelectorAll('tbody th')].some(th => th.innerText === %q)`, f.sub.email))

	// Create a third account and disable it.
	tb.typeInto(`form [name=email]`, "leaver@example.com")
	tb.typeInto(`form [name=password]`, "leaver password 1")
	tb.click(`form button[type=submit]`)
	tb.waitJS(`[...document.querySelectorAll('tbody th')].some(th => th.innerText === 'leaver@example.com')`)
	tb.click(`button[aria-label="Disable leaver@example.com"]`)
	tb.waitJS(`document.querySelector('button[aria-label="Enable leaver@example.com"]')`)
	row := `[...document.querySelectorAll('tbody tr')].find(tr => tr.querySelector('th').innerText === 'leaver@example.com')`
	if got := eval[string](tb, row+`.querySelector('.badge').innerText`); got != "Disabled" {
		t.Errorf("the disabled user's state = %q", got)
	}
	tb.screenshot("users")
}

// subscriberEnrols enrols the subscriber and checks the setup notice.
func (f *browserFlow) subscriberEnrols(t *testing.T) {
	tb := f.subTab.on(t)
	tb.signIn(f.sub, "/enroll")
	tb.enrol(f.sub)
	want := []string{"Signals", "My confirmations", "Portfolio", "Broker", "Position size", "Risk", "Password", "Notifications", "Webhooks"}
	if diff := cmp.Diff(want, tb.navLinks()); diff != "" {
		t.Errorf("subscriber navigation (-want +got):\n%s", diff)
	}
	// A new subscriber is told what to set up before confirming.
	tb.waitJS(`document.querySelector('.setup')`)
	if got := eval[[]string](tb, `[...document.querySelectorAll('.setup a')].map(a => a.getAttribute('href'))`); strings.Join(got, " ") != "/settings/broker /settings/position-size" {
		t.Errorf("setup links = %q", got)
	}
	tb.screenshot("dashboard")
}

// subscriberRefusedAdminPages checks that a subscriber sees no admin page and gets 403 from their APIs.
func (f *browserFlow) subscriberRefusedAdminPages(t *testing.T) {
	tb := f.subTab.on(t)
	for _, p := range []string{"/admin/confirmations", "/admin/users", "/admin/sessions", "/admin/signals", "/admin/audit"} {
		tb.open(p)
		if got := tb.text("main h1"); got != "Admins only" {
			t.Errorf("%s as a subscriber: heading %q, want Admins only", p, got)
		}
		if n := eval[int](tb, `document.querySelectorAll('main table, main form').length`); n != 0 {
			t.Errorf("%s as a subscriber shows %d tables or forms", p, n)
		}
	}
	tb.screenshot("admins-only")
	for _, api := range []string{"/api/v1/admin/users", "/api/v1/admin/confirmations", "/api/v1/admin/sessions", "/api/v1/admin/audit"} {
		if got := tb.fetchStatus(api); got != http.StatusForbidden && got != http.StatusNotFound {
			t.Errorf("GET %s with the subscriber's session = %d, want 403 (or 404 until the route exists)", api, got)
		}
	}
	if got := tb.fetchStatus("/api/v1/admin/users"); got != http.StatusForbidden {
		t.Errorf("GET /api/v1/admin/users as a subscriber = %d, want 403", got)
	}
}

// signInWithCode signs the admin in with a TOTP code after a wrong one, landing on the page first asked for.
func (f *browserFlow) signInWithCode(t *testing.T) {
	tb := f.env.newTab(t)
	// A signed-out visit to an admin page comes back to it after 2FA.
	tb.open("/admin/users")
	if got := tb.path(); got != "/signin?next=%2Fadmin%2Fusers" {
		t.Fatalf("signed-out /admin/users went to %q", got)
	}
	tb.typeInto(`[name=email]`, f.admin.email)
	tb.typeInto(`[name=password]`, f.admin.password)
	tb.click(`button[type=submit]`)
	tb.waitJS(`location.pathname === '/signin/2fa' && document.querySelector('[name=code]')`)
	if got := tb.activeElement(); got != "input:code" {
		t.Errorf("focus on the 2FA page = %q, want the code field", got)
	}
	tb.typeInto(`[name=code]`, "000000")
	tb.do(chromedp.KeyEvent(kb.Enter))
	tb.waitJS(`document.querySelector('[data-field=code] .field-error:not([hidden])')`)
	if got := tb.path(); got != "/signin/2fa?next=%2Fadmin%2Fusers" {
		t.Errorf("after a wrong code the page is %q, want to stay on the 2FA step", got)
	}
	if got := tb.activeElement(); got != "input:code" {
		t.Errorf("focus after a wrong code = %q, want the code field", got)
	}
	tb.screenshot("wrong-code")
	tb.typeInto(`[name=code]`, freshCode(t, f.admin))
	tb.do(chromedp.KeyEvent(kb.Enter))
	tb.waitPath("/admin/users")
}

// signInWithRecoveryCode signs the subscriber in with a recovery code.
func (f *browserFlow) signInWithRecoveryCode(t *testing.T) {
	tb := f.env.newTab(t)
	tb.signIn(f.sub, "/signin/2fa")
	tb.do(chromedp.Click(`//button[normalize-space(.)='Use a recovery code instead']`))
	tb.waitJS(`document.activeElement && document.activeElement.name === 'recovery_code'`)
	tb.typeInto(`[name=recovery_code]`, f.sub.recovery[0])
	tb.screenshot("recovery")
	tb.do(chromedp.KeyEvent(kb.Enter))
	tb.waitPath("/")
	tb.waitJS(`!document.getElementById('topbar').hidden`)
}

// phoneMenu opens the folded navigation at phone width with the keyboard.
func (f *browserFlow) phoneMenu(t *testing.T) {
	tb := f.subTab.on(t)
	tb.open("/")
	tb.do(chromedp.EmulateViewport(phoneWidth, phoneHeight))
	defer tb.do(chromedp.EmulateViewport(desktopWidth, desktopHeight))
	if eval[bool](tb, `document.getElementById('primary-nav').checkVisibility()`) {
		t.Fatal("at phone width the navigation shows before the menu is opened")
	}
	tb.do(chromedp.Focus(chromedp.CSS(`.menu-toggle`)), chromedp.KeyEvent(kb.Enter))
	tb.waitJS(`document.querySelector('.menu-toggle').getAttribute('aria-expanded') === 'true' && document.getElementById('primary-nav').checkVisibility()`)
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.env.artifacts, "testbrowser-phonemenu-open-phone.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	tb.pressTab(false)
	if got := tb.activeElement(); got != "a:Signals" {
		t.Errorf("Tab after opening the menu reaches %q, want the first link", got)
	}
	tb.do(chromedp.Click(`//nav//a[normalize-space(.)='Position size']`))
	tb.waitPath("/settings/position-size")
	if eval[bool](tb, `document.getElementById('primary-nav').checkVisibility()`) {
		t.Error("the menu stays open after choosing a page")
	}
}

// signOut ends the subscriber's session.
func (f *browserFlow) signOut(t *testing.T) {
	tb := f.subTab.on(t)
	tb.open("/")
	// Signing out while live prices are polled aborts nothing (the tab's
	// request check), and the session the prices use is the one Admin →
	// Sessions shows next.
	tb.waitJS(`document.querySelector('tr[data-ticker] .live-price[data-state=live]')`)
	tb.do(chromedp.Click(`//div[contains(@class,'account-wide')]//button[normalize-space(.)='Sign out']`))
	tb.waitPath("/signin")
	if got := tb.fetchStatus("/api/v1/me"); got != http.StatusUnauthorized {
		t.Errorf("GET /me after signing out = %d, want 401", got)
	}
	tb.open("/confirmations")
	if got := tb.path(); got != "/signin?next=%2Fconfirmations" {
		t.Errorf("a signed-out visit to /confirmations went to %q", got)
	}
}
