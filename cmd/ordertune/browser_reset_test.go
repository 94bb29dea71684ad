package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// forgotPassword: the signed-out subscriber follows "Forgot password?" on
// the sign-in page, gets the link by e-mail (the SMTP server in the test),
// opens it, sets a new password, and signs in with it and a TOTP code.
func (f *browserFlow) forgotPassword(t *testing.T) {
	tb := f.subTab.on(t)
	tb.open("/signin")
	tb.click(`a.forgot-link`)
	tb.waitPath("/forgot-password")
	if got := tb.activeElement(); got != "input:email" {
		t.Errorf("focus on the forgot-password page = %q, want the e-mail field", got)
	}
	tb.typeInto(`[name=email]`, f.sub.email)
	tb.do(chromedp.KeyEvent(kb.Enter))
	tb.waitJS(`!document.querySelector('main .notice-info').hidden`)
	if got := tb.text(`main .notice-info`); !strings.Contains(got, "If an account uses this address") {
		t.Errorf("the page says %q after the request", got)
	}
	tb.screenshot("requested")

	var link string
	deadline := time.Now().Add(waitTimeout)
	for link == "" {
		for _, m := range f.env.mail.Messages() {
			if strings.Contains(m.Header("Subject"), "Reset your password") && len(m.To) == 1 && m.To[0] == f.sub.email {
				if sm := resetLinkRE.FindStringSubmatch(m.Text()); sm != nil {
					link = sm[0]
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no reset e-mail for the subscriber")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.HasPrefix(link, f.env.base+"/reset-password#token=") {
		t.Fatalf("reset link %q, want one to this server's /reset-password", link)
	}
	tb.open(strings.TrimPrefix(link, f.env.base))
	tb.waitJS(`document.querySelector('[name=new_password]')`)
	if got := eval[string](tb, `location.href`); strings.Contains(got, "token") {
		t.Errorf("the token stays in the address bar: %s", got)
	}
	tb.screenshot("new-password")
	const next = "a password from the reset link"
	tb.typeInto(`[name=new_password]`, next)
	tb.typeInto(`[name=new_password_again]`, next)
	tb.click(`main form button[type=submit]`)
	tb.waitPath("/signin?reset=done")
	if got := tb.text(`main .notice-ok`); !strings.Contains(got, "new password is set") {
		t.Errorf("the sign-in page after the reset says %q", got)
	}
	tb.screenshot("done")

	// The link worked once.
	tb.open(strings.TrimPrefix(link, f.env.base))
	tb.typeInto(`[name=new_password]`, "yet another password")
	tb.typeInto(`[name=new_password_again]`, "yet another password")
	tb.click(`main form button[type=submit]`)
	tb.waitJS(`!document.querySelector('main .form-alert').hidden`)
	if got := tb.text(`main .form-alert`); !strings.Contains(got, "already used") {
		t.Errorf("the used link says %q", got)
	}

	f.sub.password = next
	tb.signIn(f.sub, "/signin/2fa")
	tb.typeInto(`[name=code]`, freshCode(t, f.sub))
	tb.do(chromedp.KeyEvent(kb.Enter))
	tb.waitPath("/")
}
