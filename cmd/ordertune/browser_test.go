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
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/config"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
)

const chromiumPath = "/usr/bin/chromium"

// Viewports the screenshots are taken at.
const (
	desktopWidth, desktopHeight = 1280, 900
	phoneWidth, phoneHeight     = 390, 844
)

// browserEnv is one running Ordertune with its simulator and a browser.
type browserEnv struct {
	base      string // the server's URL
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

// tab is one browser tab driven by one test.
type tab struct {
	t   *testing.T
	env *browserEnv
	ctx context.Context

	mu       sync.Mutex
	problems []string // console errors and uncaught exceptions
	shots    map[string]bool
}

// newTab opens a tab at desktop size. It fails the test at the end if the
// page logged an error or threw (a CSP violation is one), other than the
// browser's own line for each non-2xx response, which the UI handles.
func (e *browserEnv) newTab(t *testing.T) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(e.browser)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	tb := &tab{t: t, env: e, ctx: ctx, shots: map[string]bool{}}
	msgs := chromedp.Console(ctx)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(desktopWidth, desktopHeight)); err != nil {
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

func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
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
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](expr))
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
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](`Boolean(`+expr+`)`))
		if err == nil && ok {
			return
		}
		select {
		case <-tb.ctx.Done():
			body, _ := chromedp.Run(context.WithoutCancel(tb.ctx), chromedp.Evaluate[string](`document.querySelector('main') ? document.querySelector('main').innerText : ''`))
			tb.t.Fatalf("waiting for %s: %v (last error %v)\npage text:\n%s", expr, tb.ctx.Err(), err, body)
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
	tb.do(chromedp.Clear(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), s))
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
		if got := tb.text(".form-alert"); !strings.Contains(got, detail) {
			t.Errorf("alert = %q, want the server's detail %q", got, detail)
		}
		if got := eval[bool](tb, `document.activeElement.classList.contains('form-alert')`); !got {
			t.Errorf("focus after a server error is on %s, want the alert", tb.activeElement())
		}
		tb.screenshot("error")
	})
}
