package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
)

// Accounts from the outside in (issue 21 item 6): a sign-up page when
// sign-up is open, and an admin's reset of a user's two-step sign-in.

// signUp: the sign-in page offers a sign-up (the server's is open here);
// the form marks empty fields, accepts a new address, and the new account
// signs in to enrolment, in the newcomer's tab, which resetTOTP goes on with.
func (f *uiFlow) signUp(t *testing.T) {
	nt := f.newcomerTab.on(t)
	nt.open("/signin")
	nt.waitJS(`!document.querySelector('.signup-offer').hidden`)
	nt.do(chromedp.Click(`//a[normalize-space(.)='Create an account']`))
	nt.waitPath("/signup")
	if got := nt.activeElement(); got != "input:email" {
		t.Errorf("focus on the sign-up page = %q, want the e-mail field", got)
	}
	nt.click(`form button[type=submit]`)
	nt.waitJS(`document.querySelector('[data-field=password] .field-error:not([hidden])')`)
	marked := eval[[]string](nt, `[...document.querySelectorAll('form .field.has-error')].map(e => e.dataset.field).sort()`)
	if diff := cmp.Diff([]string{"email", "password"}, marked); diff != "" {
		t.Errorf("fields marked on an empty sign-up (-want +got):\n%s", diff)
	}
	nt.screenshot("signup")
	// The server's rule on passwords shows at the field.
	nt.typeInto(`[name=email]`, f.newcomer.email)
	nt.typeInto(`[name=password]`, "short")
	nt.click(`form button[type=submit]`)
	nt.waitJS(`document.querySelector('[data-field=password] .field-error:not([hidden])') && !document.querySelector('form button[type=submit]').disabled`)
	nt.typeInto(`[name=password]`, f.newcomer.password)
	nt.click(`form button[type=submit]`)
	nt.waitJS(`document.querySelector('.notice-ok[role=status]')`)
	if got := nt.text(".notice-ok"); !strings.Contains(got, "sign in") {
		t.Errorf("after signing up the page says %q", got)
	}
	nt.screenshot("signed-up")
	nt.click(`a[data-action=to-signin]`)
	nt.waitPath("/signin")
	nt.signIn(f.newcomer, "/enroll")
	nt.enrol(f.newcomer)
}

// resetTOTP: an admin resets the newcomer's two-step sign-in from Admin →
// Users (asked first, with a fresh code); the newcomer's session ends and
// their next sign-in enrols again.
func (f *uiFlow) resetTOTP(t *testing.T) {
	tb := f.tab.on(t)
	f.env.endStepUps(t)
	tb.open("/admin/users")
	btn := `button[aria-label="Reset 2FA for ` + f.newcomer.email + `"]`
	tb.waitJS(`document.querySelector('` + btn + `')`)
	tb.screenshot("users")
	// The admin's own row offers no reset.
	if n := eval[int](tb, `document.querySelectorAll('button[aria-label="Reset 2FA for `+f.me.email+`"]').length`); n != 0 {
		t.Error("the admin is offered a reset of their own two-step sign-in")
	}
	tb.click(btn)
	tb.waitJS(`document.querySelector('dialog.ask[open]')`)
	if got := tb.activeElement(); got != "button:Keep it" {
		t.Errorf("focus in the question = %q, want the safe answer", got)
	}
	tb.screenshot("reset-2fa-ask")
	tb.click(`dialog.ask [data-answer=yes]`)
	tb.stepUpThenWait(f.me, `document.querySelector('.region-status').innerText.startsWith('Two-step sign-in reset for')`)
	cells := eval[[]string](tb, `[...document.querySelectorAll('tr[data-user-id]')].filter(r => r.querySelector('th').innerText === `+jsString(f.newcomer.email)+`).map(r => r.children[2].innerText)`)
	if !cmp.Equal(cells, []string{"Not set up"}) {
		t.Errorf("the newcomer's 2FA after the reset = %q, want one row saying Not set up", cells)
	}
	tb.screenshot("reset-2fa-done")

	nt := f.newcomerTab.on(t)
	// The admin ended the newcomer's session while their page was open:
	// its next poll of the bell and of the IBKR session banner, and its
	// question whether the session is still there (it cannot read its
	// HttpOnly cookie), are refused.
	nt.allowFailed("GET /api/v1/me", "GET /api/v1/notifications", "GET /api/v1/broker")
	if code := nt.fetchStatus("/api/v1/me"); code != http.StatusUnauthorized {
		t.Errorf("the newcomer's session after the reset: GET /me = %d, want 401", code)
	}
	nt.open("/")
	nt.waitPath("/signin")
	nt.signIn(f.newcomer, "/enroll")
	nt.enrol(f.newcomer)
}

// phoneSignalCard: at 390 px a signal is a compact card of a few rows, not
// a row per column.
func (f *uiFlow) phoneSignalCard(t *testing.T) {
	tb := f.tab.on(t)
	tb.do(chromedp.EmulateViewport(phoneWidth, phoneHeight))
	defer tb.do(chromedp.EmulateViewport(desktopWidth, desktopHeight))
	tb.open("/")
	tb.waitJS(`document.querySelector('tr[data-ticker=MSFT] [data-action=confirm]')`)
	lines := eval[int](tb, `new Set([...document.querySelector('tr[data-ticker=MSFT]').children].map(c => Math.round(c.getBoundingClientRect().top))).size`)
	if lines > 6 {
		t.Errorf("a signal card at phone width has %d rows of cells, want at most 6", lines)
	}
	h := eval[float64](tb, `document.querySelector('tr[data-ticker=MSFT]').getBoundingClientRect().height`)
	if h > 330 {
		t.Errorf("a signal card at phone width is %.0f px tall, want at most 330", h)
	}
	// Every value still has its label.
	labels := eval[[]string](tb, `[...document.querySelector('tr[data-ticker=MSFT]').querySelectorAll('td')].filter(c => { const b = getComputedStyle(c, '::before'); return b.content === 'none' || b.display === 'none'; }).map(c => c.dataset.label)`)
	if diff := cmp.Diff([]string{"Action"}, labels); diff != "" {
		t.Errorf("cells without their label at phone width (-want +got):\n%s", diff)
	}
}
