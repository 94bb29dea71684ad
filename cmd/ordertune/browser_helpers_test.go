package main

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/pquerna/otp/totp"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// Ordertune-specific steps of the browser tests: people, sign-in and
// enrolment, the simulator, Settings → Broker.

// person is someone the tests sign in as.
type person struct {
	email, password string
	secret          string   // the TOTP secret as the enrolment page showed it
	recovery        []string // the recovery codes as the page showed them
	usedRecovery    int      // how many recovery codes stepUp used, from the end
	lastStep        int64    // the newest TOTP step whose code was used
}

// createUser runs `ordertune user create`, the way an operator makes the
// first admin.
func (e *browserEnv) createUser(t *testing.T, p *person, role string) {
	t.Helper()
	a := &app{
		stdin:  strings.NewReader(p.password + "\n"),
		stdout: io.Discard,
		stderr: io.Discard,
		getenv: func(k string) string { return e.vars[k] },
	}
	if err := run(t.Context(), a, []string{"user", "create", "--email", p.email, "--role", role}); err != nil {
		t.Fatalf("user create %s: %v", p.email, err)
	}
}

// freshCode returns p's TOTP code of the current 30-second step, first
// waiting for a step newer than the last one p used (the server's replay
// guard refuses a step twice) and, when the code would expire within 2 s,
// for the next one, so the server sees the step the test computed.
func freshCode(t *testing.T, p *person) string {
	t.Helper()
	for {
		now := time.Now()
		step, left := now.Unix()/30, 30-now.Unix()%30
		if step > p.lastStep && left > 2 {
			code, err := totp.GenerateCode(p.secret, now)
			if err != nil {
				t.Fatalf("totp code: %v", err)
			}
			p.lastStep = step
			return code
		}
		time.Sleep(time.Until(time.Unix((step+1)*30, 0)) + 20*time.Millisecond)
	}
}

// endStepUps ends every session's step-up, so the next sensitive action
// of a scenario asks for a code whatever the scenarios before it did.
func (e *browserEnv) endStepUps(t *testing.T) {
	t.Helper()
	if _, err := e.pool.Exec(t.Context(), `UPDATE sessions SET step_up_until = NULL`); err != nil {
		t.Fatal(err)
	}
}

// stepUp answers the step-up dialog a sensitive action opened, with one of
// p's recovery codes (a TOTP code would have to wait for a step newer than
// the sign-in's), and waits for it to close.
func (tb *tab) stepUp(p *person) {
	tb.t.Helper()
	tb.waitJS(`document.querySelector('dialog#step-up[open]') && document.activeElement && document.activeElement.name === 'code'`)
	if p.usedRecovery >= len(p.recovery) {
		tb.t.Fatal("no recovery code left for a step-up")
	}
	p.usedRecovery++
	tb.do(chromedp.Click(`//dialog[@id='step-up']//button[normalize-space(.)='Use a recovery code instead']`))
	tb.waitJS(`document.activeElement && document.activeElement.name === 'recovery_code'`)
	tb.typeInto(`#step-up [name=recovery_code]`, p.recovery[len(p.recovery)-p.usedRecovery])
	tb.do(chromedp.Click(`//dialog[@id='step-up']//button[normalize-space(.)='Confirm']`))
	tb.waitJS(`!document.querySelector('dialog#step-up')`)
}

// stepUpThenWait waits for done (a JavaScript condition), answering the
// step-up dialog on the way if the action asked for one: within five
// minutes of an earlier step-up the server does not ask again.
func (tb *tab) stepUpThenWait(p *person, done string) {
	tb.t.Helper()
	tb.waitJS(`document.querySelector('dialog#step-up[open]') || (` + done + `)`)
	if eval[bool](tb, `!!document.querySelector('dialog#step-up[open]')`) {
		tb.stepUp(p)
	}
	tb.waitJS(done)
}

// path returns the page's path and query.
func (tb *tab) path() string {
	tb.t.Helper()
	return eval[string](tb, `location.pathname + location.search`)
}

// waitPath waits until the page is at path (the client router navigates
// without a load event).
func (tb *tab) waitPath(path string) {
	tb.t.Helper()
	tb.waitJS(fmt.Sprintf(`location.pathname + location.search === %q && document.querySelector('main h1') && !document.querySelector('main .loading')`, path))
}

// signIn enters p's e-mail and password and waits for the second step.
func (tb *tab) signIn(p *person, wantNext string) {
	tb.t.Helper()
	tb.open("/signin")
	tb.typeInto(`[name=email]`, p.email)
	tb.typeInto(`[name=password]`, p.password)
	tb.click(`button[type=submit]`)
	tb.waitJS(fmt.Sprintf(`location.pathname === %q && document.querySelector('main h1')`, wantNext))
}

// enrol walks through 2FA enrolment: reads the secret the page shows,
// answers with a code computed from it, and saves the recovery codes.
func (tb *tab) enrol(p *person) {
	tb.t.Helper()
	tb.waitJS(`document.getElementById('totp-secret') && document.querySelector('img.qr').complete && document.querySelector('img.qr').naturalWidth > 0`)
	p.secret = strings.ReplaceAll(tb.text("#totp-secret"), " ", "")
	if uri := eval[string](tb, `document.querySelector('a[href^="otpauth:"]').href`); !strings.Contains(uri, "secret="+p.secret) {
		tb.t.Errorf("the page shows secret %q but the otpauth link is %q", p.secret, uri)
	}
	if got := tb.activeElement(); got != "input:code" {
		tb.t.Errorf("focus on the enrolment page = %q, want the code field", got)
	}
	tb.screenshot("enrol")
	tb.typeInto(`[name=code]`, freshCode(tb.t, p))
	tb.do(chromedp.KeyEvent(kb.Enter))
	tb.waitJS(`document.querySelectorAll('.recovery-codes li').length > 0`)
	p.recovery = eval[[]string](tb, `[...document.querySelectorAll('.recovery-codes li')].map(li => li.innerText.trim())`)
	if len(p.recovery) != 10 {
		tb.t.Errorf("recovery codes shown: %d, want 10", len(p.recovery))
	}
	if !eval[bool](tb, `[...document.querySelectorAll('main button')].find(b => b.innerText.startsWith('Continue')).disabled`) {
		tb.t.Error("Continue is enabled before the user says the codes are saved")
	}
	tb.screenshot("recovery-codes")
	tb.click(`#codes-saved`)
	tb.do(chromedp.Click(`//button[starts-with(normalize-space(.), 'Continue')]`))
	tb.waitPath("/")
	tb.waitJS(`!document.getElementById('topbar').hidden`)
}

// navLinks lists the top navigation's link texts.
func (tb *tab) navLinks() []string {
	tb.t.Helper()
	return eval[[]string](tb, `[...document.querySelectorAll('#topbar nav a')].map(a => a.innerText.trim())`)
}

// fetchStatus calls the API from the page, with its cookie, and returns the
// HTTP status; a refusal it gets is not held against the page.
func (tb *tab) fetchStatus(path string) int {
	tb.t.Helper()
	tb.allowFailed("GET " + path) // the test's own question, not the page's
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[int](fmt.Sprintf(`fetch(%q).then(r => r.status)`, path), chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("fetch %s: %v", path, err)
	}
	return v
}

// setValue sets a field's value the way a paste does (one input event),
// for long PEM blocks that would take seconds to type key by key.
func (tb *tab) setValue(sel, v string) {
	tb.t.Helper()
	b, _ := json.Marshal(v)
	eval[bool](tb, fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %s; e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`, sel, b))
}

// simCall calls the simulator's control API over HTTP.
func (e *browserEnv) simCall(t *testing.T, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.simURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// simCredentials makes a simulated IBKR consumer the way IBKR's
// self-service portal does; registered tells the simulator about it.
func (e *browserEnv) simCredentials(t *testing.T, keys [2]*rsa.PrivateKey, account string, registered bool) ibkrsim.UserCredentials {
	t.Helper()
	c, u, err := ibkrsim.Register(ibkrsim.RegisterOptions{AccountID: account, SignatureKey: keys[0], EncryptionKey: keys[1]})
	if err != nil {
		t.Fatal(err)
	}
	if registered {
		e.simCall(t, http.MethodPost, "/sim/consumers", c, nil)
	}
	return u
}

// fillBroker pastes a credential set into Settings → Broker.
func (tb *tab) fillBroker(u ibkrsim.UserCredentials) {
	tb.t.Helper()
	tb.typeInto(`[name=consumer_key]`, u.ConsumerKey)
	tb.typeInto(`[name=access_token]`, u.AccessToken)
	tb.setValue(`[name=access_token_secret]`, u.AccessTokenSecret)
	tb.setValue(`[name=signature_key_pem]`, u.SignaturePrivateKeyPEM)
	tb.setValue(`[name=encryption_key_pem]`, u.EncryptionPrivateKeyPEM)
	tb.setValue(`[name=dh_params]`, u.DHPrimeHex)
	tb.typeInto(`[name=account_id]`, u.AccountID)
}

// testSteps reads the Test Connection result: step name → ok.
func (tb *tab) testSteps() map[string]bool {
	tb.t.Helper()
	return eval[map[string]bool](tb, `Object.fromEntries([...document.querySelectorAll('.test-region .step[data-ok]')].map(li => [li.dataset.step, li.dataset.ok === 'true']))`)
}

// fillSignal fills the admin's Publish form with an entry signal that
// expires in two hours (the form takes New York time); callers set
// anything else and submit.
func (tb *tab) fillSignal(ticker, refClose, rsi2, return2d string) {
	tb.t.Helper()
	tb.typeInto(`[name=ticker]`, ticker)
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.setValue(`[name=expires_at]`, time.Now().In(ny).Add(2*time.Hour).Format("2006-01-02T15:04"))
	tb.typeInto(`[name=ref_close]`, refClose)
	tb.typeInto(`[name=rsi2]`, rsi2)
	tb.typeInto(`[name=return_2d]`, return2d)
}
