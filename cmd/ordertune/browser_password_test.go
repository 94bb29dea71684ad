package main

import (
	"net/http"
	"strings"
	"testing"
)

// changePassword changes the subscriber's password in Settings → Password:
// a wrong current password and a mistyped repeat are shown at their
// fields, then the change works and only the new password signs in.
func (f *browserFlow) changePassword(t *testing.T) {
	tb := f.subTab.on(t)
	tb.open("/settings/password")
	tb.waitJS(`document.querySelector('[name=current_password]')`)
	fieldError := func(name string) string {
		return tb.text(`[data-field=` + name + `] .field-error`)
	}
	const next = "a new subscriber password 2"

	tb.typeInto(`[name=current_password]`, "not the password")
	tb.typeInto(`[name=new_password]`, next)
	tb.typeInto(`[name=new_password_again]`, next)
	f.env.endStepUps(t)
	tb.click(`form button[type=submit]`)
	tb.stepUp(f.sub)
	tb.waitJS(`!document.querySelector('[data-field=current_password] .field-error').hidden`)
	if got := fieldError("current_password"); !strings.Contains(got, "not your current password") {
		t.Errorf("wrong current password says %q", got)
	}

	tb.setValue(`[name=current_password]`, f.sub.password)
	tb.setValue(`[name=new_password]`, "short")
	tb.setValue(`[name=new_password_again]`, "short")
	tb.click(`form button[type=submit]`)
	tb.waitJS(`!document.querySelector('[data-field=new_password] .field-error').hidden`)
	if got := fieldError("new_password"); !strings.Contains(got, "8 to") {
		t.Errorf("a too short new password says %q, want the server's length rule", got)
	}

	tb.setValue(`[name=new_password]`, next)
	tb.setValue(`[name=new_password_again]`, next+"x")
	tb.click(`form button[type=submit]`)
	tb.waitJS(`!document.querySelector('[data-field=new_password_again] .field-error').hidden`)
	if got := fieldError("new_password_again"); got != "Does not match the new password." {
		t.Errorf("mistyped repeat says %q", got)
	}

	tb.setValue(`[name=new_password_again]`, next)
	tb.click(`form button[type=submit]`)
	tb.waitJS(`document.querySelector('.saved-msg').innerText.startsWith('Password changed.')`)
	if n := eval[int](tb, `[...document.querySelectorAll('form input')].filter(i => i.value).length`); n != 0 {
		t.Errorf("%d password fields still filled after the change", n)
	}
	tb.screenshot("changed")

	if code, _ := f.env.apiProblem(t, http.MethodPost, "/auth/login", map[string]string{"email": f.sub.email, "password": f.sub.password}); code != http.StatusUnauthorized {
		t.Errorf("sign-in with the old password: %d, want 401", code)
	}
	if code, detail := f.env.apiProblem(t, http.MethodPost, "/auth/login", map[string]string{"email": f.sub.email, "password": next}); code != http.StatusOK {
		t.Errorf("sign-in with the new password: %d %s, want 200", code, detail)
	}
	f.sub.password = next
}
