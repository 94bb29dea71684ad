package main

// Browser tests: the real server (build, as serve wires it) over real HTTP,
// a fresh PostgreSQL database, the IBKR simulator over HTTP, and Debian's
// Chromium driven headless through chromedp. One browser serves the whole
// test process; each scenario opens its own tab. Every page visited is
// saved as a full-page PNG under the artifacts folder, at desktop and at
// phone width.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/go-cmp/cmp"
	"github.com/pquerna/otp/totp"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/config"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
)

const chromiumPath = "/usr/bin/chromium"

// waitTimeout bounds each wait for a condition in a page; the slowest is an
// order settling through the reconciliation worker.
const waitTimeout = 45 * time.Second

// Viewports the screenshots are taken at.
const (
	desktopWidth, desktopHeight = 1280, 900
	phoneWidth, phoneHeight     = 390, 844
)

// browserEnv is one running Ordertune with its simulator and a browser.
type browserEnv struct {
	base      string // the server's URL
	vars      map[string]string
	sim       *ibkrsim.Server
	simURL    string
	browser   context.Context
	artifacts string
	logs      *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// artifactsDir is $ORDERTUNE_ARTIFACTS, else .data/artifacts/screenshots at
// the repository root (gitignored).
func artifactsDir(t *testing.T) string {
	if d := os.Getenv("ORDERTUNE_ARTIFACTS"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".data", "artifacts", "screenshots")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

func startBrowserEnv(t *testing.T) *browserEnv {
	t.Helper()
	env := &browserEnv{artifacts: artifactsDir(t), logs: &syncBuffer{}}
	if err := os.MkdirAll(env.artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	env.sim = ibkrsim.New(ibkrsim.Config{})
	simSrv := httptest.NewServer(env.sim)
	t.Cleanup(simSrv.Close)
	env.simURL = simSrv.URL

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env.base = "http://" + l.Addr().String()
	key := make([]byte, 32)
	rand.Read(key)
	vars := map[string]string{
		"DATABASE_URL":            pgtest.DB(t),
		"ORDERTUNE_ADDR":          l.Addr().String(),
		"ORDERTUNE_PUBLIC_URL":    env.base,
		"ORDERTUNE_IBKR_BASE_URL": simSrv.URL + ibkrsim.APIPrefix,
		"ORDERTUNE_MASTER_KEYS":   "k1:" + base64.StdEncoding.EncodeToString(key),
		"ORDERTUNE_SIGNUP":        "open",
	}
	env.vars = vars
	cfg, err := config.Load(func(k string) string { return vars[k] }, false)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := postgres.Open(t.Context(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	log := zerolog.New(env.logs)
	svc, err := build(cfg, log, pool)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWorkers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, w := range svc.workers {
		wg.Add(1)
		go func() { defer wg.Done(); w(wctx) }()
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: svc.http.Handler()}}
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		stopWorkers()
		wg.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", env.logs)
		}
	})

	// Exactly these flags: this machine runs tests as root with no network.
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// Start the browser now, so a missing Chromium fails here, clearly.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v (make test installs it: scripts/ensure-deps.sh chromium)", chromiumPath, err)
	}
	env.browser = bctx
	return env
}

// tab is one browser tab with a browser context (cookie jar) of its own:
// one person signed in. A tab made in a parent test is handed to subtests
// with on(t).
type tab struct {
	t *testing.T
	*tabState
}

type tabState struct {
	env *browserEnv
	ctx context.Context

	mu       sync.Mutex
	problems []string // console errors and uncaught exceptions
}

// newTab opens a tab at desktop size in a fresh browser context. It fails
// t at the end if the page logged an error or threw (a CSP violation is
// one), other than the browser's own line for each non-2xx response, which
// the UI handles.
func (e *browserEnv) newTab(t *testing.T) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(e.browser, chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithTimeout(ctx, 8*time.Minute)
	tb := &tab{t: t, tabState: &tabState{env: e, ctx: ctx}}
	msgs := chromedp.Console(ctx)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(desktopWidth, desktopHeight)); err != nil {
		t.Fatal(err)
	}
	// Overlay scrollbars, as on phones: a classic scrollbar would take its
	// width out of the screenshots.
	if _, err := chromedp.Call(ctx, emulation.SetScrollbarsHidden, emulation.SetScrollbarsHiddenParams{Hidden: true}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if (m.Type == chromedp.ConsoleError || m.IsException()) && m.Source != "network" {
				tb.mu.Lock()
				tb.problems = append(tb.problems, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
				tb.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		<-done
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, p := range tb.problems {
			t.Errorf("browser console: %s", p)
		}
	})
	return tb
}

// on returns the same tab reporting to t.
func (tb *tab) on(t *testing.T) *tab { return &tab{t: t, tabState: tb.tabState} }

// do runs actions, each wait in them bounded by waitTimeout.
func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("browser: %v", err)
	}
}

// open navigates to path and waits for the page's heading.
func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(tb.env.base + path))
	tb.waitJS(`document.querySelector('main h1') !== null && !document.querySelector('main .loading')`)
}

// eval evaluates a JavaScript expression and decodes its value into T.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS waits until expr is true in the page. chromedp's Poll compiles
// its predicate with new Function, which the UI's CSP forbids, so this
// polls from the outside (DevTools evaluation is not subject to CSP).
func (tb *tab) waitJS(expr string) {
	tb.t.Helper()
	wctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := chromedp.Run(wctx, chromedp.Evaluate[bool](`Boolean(`+expr+`)`))
		if err == nil && ok {
			return
		}
		select {
		case <-wctx.Done():
			body, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`location.href + '\n' + document.body.innerText`))
			tb.t.Fatalf("waiting for %s: %v (last error %v)\npage:\n%s", expr, wctx.Err(), err, body)
		case <-tick.C:
		}
	}
}

// text returns the visible text of the first element matching a CSS selector.
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	return eval[string](tb, fmt.Sprintf(`(document.querySelector(%q) || {innerText: ''}).innerText`, sel))
}

// typeInto focuses a field and types into it with real key events.
func (tb *tab) typeInto(sel, s string) {
	tb.t.Helper()
	// chromedp.Clear resets the value attribute, which no longer controls a
	// field someone typed into; the property does.
	eval[bool](tb, fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = ''; return true; })()`, sel))
	tb.do(chromedp.SendKeys(chromedp.CSS(sel), s))
}

func (tb *tab) click(sel string) {
	tb.t.Helper()
	tb.do(chromedp.Click(chromedp.CSS(sel)))
}

var nonFileChars = regexp.MustCompile(`[^a-z0-9-]+`)

// screenshot saves the whole page as PNG, at desktop width and at phone
// width, named after the test and name.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	if bad := eval[string](tb, `(document.body.innerText.match(/\b(null|undefined|NaN)\b|\[object Object\]/) || [''])[0]`); bad != "" {
		tb.t.Errorf("page %s shows %q: a value was rendered without formatting", name, bad)
	}
	for _, low := range eval[[]string](tb, contrastCheck) {
		tb.t.Errorf("page %s: text contrast below WCAG AA: %s", name, low)
	}
	base := nonFileChars.ReplaceAllString(strings.ToLower(tb.t.Name()+"-"+name), "-")
	for _, vp := range []struct {
		suffix string
		w, h   int64
	}{{"", desktopWidth, desktopHeight}, {"-phone", phoneWidth, phoneHeight}} {
		tb.do(chromedp.EmulateViewport(vp.w, vp.h))
		png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			tb.t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(filepath.Join(tb.env.artifacts, base+vp.suffix+".png"), png, 0o644); err != nil {
			tb.t.Fatal(err)
		}
	}
	tb.do(chromedp.EmulateViewport(desktopWidth, desktopHeight))
}

// contrastCheck lists visible text whose contrast with its background is
// below WCAG AA (4.5:1, or 3:1 for large text). Disabled controls are
// exempt, as WCAG says; behind an open modal dialog only the dialog counts.
const contrastCheck = `(() => {
  const rgb = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); return m ? m[1].split(',').map(Number) : null; };
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = ([r, g, b]) => 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  const bgOf = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c && (c.length < 4 || c[3] > 0.5)) return c;
    }
    return [255, 255, 255];
  };
  const modal = document.querySelector('dialog[open]');
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (modal && !modal.contains(el)) continue;
    if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    if (el.closest('.sr-only, [hidden], option, :disabled, .skip-link') || !el.getClientRects().length) continue;
    const cs = getComputedStyle(el);
    if (cs.visibility === 'hidden') continue;
    const a = lum(rgb(cs.color)), b = lum(bgOf(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) out.push(el.tagName.toLowerCase() + '.' + el.className + ' "' + el.textContent.trim().slice(0, 40) + '" ' + ratio.toFixed(2) + ' < ' + need);
  }
  return out;
})()`

// activeElement describes the focused element as tag#name-or-text.
func (tb *tab) activeElement() string {
	tb.t.Helper()
	return eval[string](tb, `(() => { const a = document.activeElement; if (!a) return ''; return a.tagName.toLowerCase() + ':' + (a.getAttribute('name') || a.textContent.trim()); })()`)
}

// pressTab sends the Tab key (with Shift when back is set).
func (tb *tab) pressTab(back bool) {
	tb.t.Helper()
	var opts []chromedp.KeyOption
	if back {
		opts = append(opts, chromedp.KeyModifiers(chromedp.ModifierShift))
	}
	tb.do(chromedp.KeyEvent(kb.Tab, opts...))
}

// apiProblem calls the API directly and returns the problem's detail, so a
// test can check that the page shows exactly what the server said.
func (e *browserEnv) apiProblem(t *testing.T, method, path string, body any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, e.base+"/api/v1"+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct {
		Detail string `json:"detail"`
	}
	json.NewDecoder(resp.Body).Decode(&p)
	return resp.StatusCode, p.Detail
}

// person is someone the tests sign in as.
type person struct {
	email, password string
	secret          string   // the TOTP secret as the enrolment page showed it
	recovery        []string // the recovery codes as the page showed them
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

// totpCode returns the code of the current 30-second step (offset 0) or of
// the one before (-1), which the server also accepts. When the code would
// expire within 2 s it first waits for the next step, so the server sees
// the step the test computed.
func totpCode(t *testing.T, secret string, offset int) string {
	t.Helper()
	now := time.Now()
	if left := 30 - now.Unix()%30; left <= 2 {
		next := time.NewTimer(time.Until(time.Unix(now.Unix()+left, 0)) + 20*time.Millisecond)
		<-next.C
		now = time.Now()
	}
	code, err := totp.GenerateCode(secret, now.Add(time.Duration(offset)*30*time.Second))
	if err != nil {
		t.Fatalf("totp code: %v", err)
	}
	return code
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
	// The previous step's code: the sign-in test later uses the current one,
	// which the replay guard must accept.
	tb.typeInto(`[name=code]`, totpCode(tb.t, p.secret, -1))
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
// HTTP status.
func (tb *tab) fetchStatus(path string) int {
	tb.t.Helper()
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

func TestBrowser(t *testing.T) {
	env := startBrowserEnv(t)

	t.Run("SignInPage", func(t *testing.T) {
		tb := env.newTab(t)
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
		_, detail := env.apiProblem(t, http.MethodPost, "/auth/login", map[string]string{"email": "nobody@example.com", "password": "wrong password 1"})
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
	})

	admin := &person{email: "admin@example.com", password: "correct horse battery"}
	env.createUser(t, admin, "admin")
	sub := &person{email: "sam@example.com", password: "subscriber password 1"}
	adminTab := env.newTab(t)
	subTab := env.newTab(t)

	t.Run("AdminEnrols", func(t *testing.T) {
		tb := adminTab.on(t)
		tb.signIn(admin, "/enroll")
		tb.enrol(admin)
		want := []string{"Signals", "My confirmations", "Broker", "Position size", "Log", "Users", "Sessions", "Publish", "Audit"}
		if diff := cmp.Diff(want, tb.navLinks()); diff != "" {
			t.Errorf("admin navigation (-want +got):\n%s", diff)
		}
	})

	t.Run("AdminManagesUsers", func(t *testing.T) {
		tb := adminTab.on(t)
		tb.do(chromedp.Click(`//nav//a[normalize-space(.)='Users']`))
		tb.waitPath("/admin/users")
		tb.waitJS(`document.querySelector('tr[data-user-id]')`)

		// The server's per-field error lands next to the password field.
		tb.typeInto(`form [name=email]`, sub.email)
		tb.typeInto(`form [name=password]`, "short")
		tb.click(`form button[type=submit]`)
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

		tb.typeInto(`form [name=password]`, sub.password)
		tb.click(`form button[type=submit]`)
		tb.waitJS(fmt.Sprintf(`[...document.querySelectorAll('tbody th')].some(th => th.innerText === %q)`, sub.email))

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
	})

	t.Run("SubscriberEnrols", func(t *testing.T) {
		tb := subTab.on(t)
		tb.signIn(sub, "/enroll")
		tb.enrol(sub)
		want := []string{"Signals", "My confirmations", "Broker", "Position size"}
		if diff := cmp.Diff(want, tb.navLinks()); diff != "" {
			t.Errorf("subscriber navigation (-want +got):\n%s", diff)
		}
		// A new subscriber is told what to set up before confirming.
		tb.waitJS(`document.querySelector('.setup')`)
		if got := eval[[]string](tb, `[...document.querySelectorAll('.setup a')].map(a => a.getAttribute('href'))`); strings.Join(got, " ") != "/settings/broker /settings/position-size" {
			t.Errorf("setup links = %q", got)
		}
		tb.screenshot("dashboard")
	})

	t.Run("SubscriberRefusedAdminPages", func(t *testing.T) {
		tb := subTab.on(t)
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
	})

	t.Run("SignInWithCode", func(t *testing.T) {
		tb := env.newTab(t)
		// A signed-out visit to an admin page comes back to it after 2FA.
		tb.open("/admin/users")
		if got := tb.path(); got != "/signin?next=%2Fadmin%2Fusers" {
			t.Fatalf("signed-out /admin/users went to %q", got)
		}
		tb.typeInto(`[name=email]`, admin.email)
		tb.typeInto(`[name=password]`, admin.password)
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
		tb.typeInto(`[name=code]`, totpCode(t, admin.secret, 0))
		tb.do(chromedp.KeyEvent(kb.Enter))
		tb.waitPath("/admin/users")
	})

	t.Run("SignInWithRecoveryCode", func(t *testing.T) {
		tb := env.newTab(t)
		tb.signIn(sub, "/signin/2fa")
		tb.do(chromedp.Click(`//button[normalize-space(.)='Use a recovery code instead']`))
		tb.waitJS(`document.activeElement && document.activeElement.name === 'recovery_code'`)
		tb.typeInto(`[name=recovery_code]`, sub.recovery[0])
		tb.screenshot("recovery")
		tb.do(chromedp.KeyEvent(kb.Enter))
		tb.waitPath("/")
		tb.waitJS(`!document.getElementById('topbar').hidden`)
	})

	var keys [2]*rsa.PrivateKey
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}

	t.Run("PhoneMenu", func(t *testing.T) {
		tb := subTab.on(t)
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
		if err := os.WriteFile(filepath.Join(env.artifacts, "testbrowser-phonemenu-open-phone.png"), png, 0o644); err != nil {
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
	})

	t.Run("BrokerTestFails", func(t *testing.T) {
		tb := subTab.on(t)
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
		u := env.simCredentials(t, keys, "DU7654321", false)
		tb.fillBroker(u)
		tb.setValue(`[name=signature_key_pem]`, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----")
		tb.click(`button[data-action=save]`)
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
	})

	t.Run("BrokerConnects", func(t *testing.T) {
		tb := subTab.on(t)
		tb.open("/settings/broker?mode=paper")
		u := env.simCredentials(t, keys, "DU1234567", true)
		tb.fillBroker(u)
		tb.click(`button[data-action=test]`)
		tb.waitJS(`document.querySelector('.test-region .test-result[data-ok]')`)
		want := map[string]bool{"credentials": true, "live_session_token": true, "brokerage_session": true, "accounts": true}
		if diff := cmp.Diff(want, tb.testSteps()); diff != "" {
			t.Errorf("steps of a good set (-want +got):\n%s", diff)
		}
		tb.click(`button[data-action=save]`)
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
	})

	t.Run("PositionSize", func(t *testing.T) {
		tb := subTab.on(t)
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
		tb.click(`button[type=submit]`)
		tb.waitJS(`document.querySelector('.saved-msg').innerText === 'Saved.'`)
		tb.open("/settings/position-size")
		if got := eval[[]string](tb, `[document.querySelector('input[name=mode]:checked').value, document.querySelector('[name=value]').value]`); strings.Join(got, " ") != "dollars 5000" {
			t.Errorf("after reload: %q, want dollars 5000", got)
		}
		tb.screenshot("saved")
	})

	var confirmationID string
	t.Run("ConfirmAndFill", func(t *testing.T) {
		at := adminTab.on(t)
		at.do(chromedp.Click(`//nav//a[normalize-space(.)='Publish']`))
		at.waitPath("/admin/signals")
		at.typeInto(`[name=ticker]`, "aapl")
		at.setValue(`[name=expires_at]`, time.Now().UTC().Add(2*time.Hour).Format("2006-01-02T15:04"))
		at.typeInto(`[name=ref_close]`, "187.25")
		at.typeInto(`[name=rsi2]`, "4.5")
		at.typeInto(`[name=return_2d]`, "-3.1")
		at.screenshot("publish")
		at.click(`form button[type=submit]`)
		at.waitJS(`document.querySelector('.saved-msg').innerText === 'Published AAPL.'`)
		at.waitJS(`[...document.querySelectorAll('tbody th')].some(th => th.innerText === 'AAPL')`)
		at.screenshot("published")

		tb := subTab.on(t)
		tb.do(chromedp.Click(`//nav//a[normalize-space(.)='Signals']`))
		tb.waitPath("/")
		row := `tr[data-ticker=AAPL]`
		tb.waitJS(`document.querySelector('` + row + ` [data-action=confirm]')`)
		cells := eval[[]string](tb, `[...document.querySelectorAll('`+row+` > *')].map(c => c.innerText.trim())`)
		if len(cells) < 9 || cells[4] != "$187.25" || cells[5] != "4.5" || cells[6] != "−3.1 %" || cells[7] != "Market on open" {
			t.Errorf("signal row = %q", cells)
		}
		tb.screenshot("signals")

		// Keyboard only: Enter opens the dialog, focus lands on Confirm once
		// the preview is in, Escape closes it and focus returns to the row.
		tb.do(chromedp.Focus(chromedp.CSS(row+` [data-action=confirm]`)), chromedp.KeyEvent(kb.Enter))
		tb.waitJS(`document.querySelector('dialog[open] [data-fact=quantity]') && document.activeElement.innerText === 'Confirm Buy' && document.querySelector('dialog[open]').contains(document.activeElement)`)
		tb.do(chromedp.KeyEvent(kb.Escape))
		tb.waitJS(`!document.querySelector('dialog') && document.activeElement.dataset.action === 'confirm'`)

		tb.click(row + ` [data-action=confirm]`)
		tb.waitJS(`document.querySelector('dialog[open] [data-fact=quantity]')`)
		facts := eval[map[string]string](tb, `Object.fromEntries([...document.querySelectorAll('dialog[open] .facts > div')].map(d => [d.querySelector('dt').innerText, d.querySelector('dd').innerText]))`)
		wantFacts := map[string]string{
			"Side": "Buy", "Order type": "Market at the open (MKT, OPG)", "Limit price": "None", "Quantity": "26 shares",
			"Estimated value": "$4868.50", "Broker": "Interactive Brokers", "Mode": "Paper", "Account": facts["Account"],
		}
		if diff := cmp.Diff(wantFacts, facts); diff != "" {
			t.Errorf("confirm dialog (-want +got):\n%s", diff)
		}
		if acct := facts["Account"]; !strings.HasSuffix(acct, "4567") || strings.Contains(acct, "DU1234567") {
			t.Errorf("account in the dialog = %q, want it masked", acct)
		}
		tb.screenshot("confirm-dialog")

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
		href := eval[string](tb, `document.querySelector('`+row+` a.status-link').getAttribute('href')`)
		confirmationID = strings.TrimPrefix(href, "/confirmations/")
		tb.screenshot("submitted")

		var orders []ibkrsim.SimOrder
		env.simCall(t, http.MethodGet, "/sim/orders", nil, &orders)
		if len(orders) != 1 || orders[0].COID != confirmationID || orders[0].Side != "BUY" || orders[0].Quantity != 26 || orders[0].TIF != "OPG" {
			t.Fatalf("orders at the simulator: %+v, want one BUY 26 OPG with cOID %s", orders, confirmationID)
		}

		env.simCall(t, http.MethodPost, "/sim/auction/open", nil, nil)
		// No reload: the page polls until the row settles.
		tb.waitJS(`document.querySelector('` + row + ` .badge[data-status=filled]')`)
		if got := tb.text(row + ` .status-cell`); !strings.Contains(got, "26 @ $") {
			t.Errorf("filled status cell = %q, want the fill", got)
		}
		tb.screenshot("filled")
	})

	t.Run("ConfirmFailsWithIBKRsMessage", func(t *testing.T) {
		at := adminTab.on(t)
		at.open("/admin/signals")
		at.typeInto(`[name=ticker]`, "MSFT")
		at.setValue(`[name=expires_at]`, time.Now().UTC().Add(2*time.Hour).Format("2006-01-02T15:04"))
		at.typeInto(`[name=ref_close]`, "410.10")
		at.typeInto(`[name=rsi2]`, "7.25")
		at.typeInto(`[name=return_2d]`, "-2")
		at.setValue(`[name=entry_mode]`, "next_open_limit")
		at.typeInto(`[name=limit_price]`, "405.00")
		at.click(`form button[type=submit]`)
		at.waitJS(`document.querySelector('.saved-msg').innerText === 'Published MSFT.'`)

		// IBKR asks a question Ordertune has no policy for: the order must
		// not go through, and the user reads IBKR's own words.
		env.simCall(t, http.MethodPost, "/sim/faults", map[string]any{
			"path": "/iserver/account/*/orders", "kind": "reply_question", "value": "o999", "count": 1,
		}, nil)
		tb := subTab.on(t)
		tb.open("/")
		row := `tr[data-ticker=MSFT]`
		tb.waitJS(`document.querySelector('` + row + ` [data-action=confirm]')`)
		if got := tb.text(row + ` > :nth-child(9)`); got != "$405.00" {
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
		tb.screenshot("failed")
	})

	t.Run("MyConfirmations", func(t *testing.T) {
		tb := subTab.on(t)
		tb.do(chromedp.Click(`//nav//a[normalize-space(.)='My confirmations']`))
		tb.waitPath("/confirmations")
		tb.waitJS(`document.querySelector('tr[data-confirmation-id="` + confirmationID + `"] .badge[data-status=filled]')`)
		tb.screenshot("list")
		tb.click(`tr[data-confirmation-id="` + confirmationID + `"] a`)
		tb.waitPath("/confirmations/" + confirmationID)
		tb.waitJS(`document.querySelector('.timeline')`)
		history := eval[[]string](tb, `[...document.querySelectorAll('.timeline .badge')].map(b => b.dataset.status)`)
		if len(history) < 2 || history[len(history)-1] != "filled" || !slices.Contains(history, "submitted") {
			t.Errorf("status history = %q, want submitted … filled", history)
		}
		tb.screenshot("detail")
	})

	t.Run("AdminLogAndCSV", func(t *testing.T) {
		tb := adminTab.on(t)
		tb.do(chromedp.Click(`//nav//a[normalize-space(.)='Log']`))
		tb.waitPath("/admin/confirmations")
		tb.typeInto(`[name=user]`, sub.email)
		tb.typeInto(`[name=ticker]`, "aapl")
		tb.click(`.filters button[type=submit]`)
		tb.waitPath("/admin/confirmations?user=sam%40example.com&ticker=AAPL")
		tb.waitJS(`document.querySelector('tr[data-confirmation-id="` + confirmationID + `"] .badge[data-status=filled]')`)
		tb.screenshot("log")

		dir := t.TempDir()
		bc := chromedp.FromContext(tb.ctx).BrowserContextID
		// The subscription ends with dctx, which bounds the wait.
		dctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
		defer cancel()
		progress := chromedp.BrowserEvents(dctx, browser.DownloadProgress)
		if _, err := chromedp.CallBrowser(tb.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, BrowserContextID: bc, DownloadPath: dir, EventsEnabled: ptr(true),
		}); err != nil {
			t.Fatal(err)
		}
		tb.click(`a[data-action=csv]`)
		csv := waitDownload(t, progress, dir)
		if !strings.Contains(csv, confirmationID) || !strings.Contains(csv, "filled") || !strings.HasPrefix(csv, "id,") {
			t.Errorf("downloaded CSV does not hold the filled confirmation %s:\n%s", confirmationID, csv)
		}
	})

	t.Run("SignOut", func(t *testing.T) {
		tb := subTab.on(t)
		tb.open("/")
		tb.do(chromedp.Click(`//div[contains(@class,'account-wide')]//button[normalize-space(.)='Sign out']`))
		tb.waitPath("/signin")
		if got := tb.fetchStatus("/api/v1/me"); got != http.StatusUnauthorized {
			t.Errorf("GET /me after signing out = %d, want 401", got)
		}
		tb.open("/confirmations")
		if got := tb.path(); got != "/signin?next=%2Fconfirmations" {
			t.Errorf("a signed-out visit to /confirmations went to %q", got)
		}
	})

	t.Run("AdminSessionsAndAudit", func(t *testing.T) {
		tb := adminTab.on(t)
		tb.do(chromedp.Click(`//nav//a[normalize-space(.)='Sessions']`))
		tb.waitPath("/admin/sessions")
		tb.waitJS(`document.querySelector('main table')`)
		if got := tb.text("main tbody"); !strings.Contains(got, sub.email) {
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
	})
}

// waitDownload waits until the browser reports a download completed and
// returns the file's content (allowAndName names it by the download's GUID).
func waitDownload(t *testing.T, progress iter.Seq2[browser.EventDownloadProgress, error], dir string) string {
	t.Helper()
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("waiting for the download: %v", err)
		}
		switch ev.State {
		case browser.DownloadProgressStateCompleted:
			b, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		case browser.DownloadProgressStateCanceled:
			t.Fatal("the browser cancelled the download")
		}
	}
	t.Fatal("the browser's events ended before the download finished")
	return ""
}

func ptr[T any](v T) *T { return &v }
