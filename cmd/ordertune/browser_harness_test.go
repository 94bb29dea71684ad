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
	"iter"
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

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/config"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/notify/mailcatch"
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
	pool      *pgxpool.Pool // the server's database, for fixtures
	mail      *mailcatch.Server
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

	// E-mail goes to an SMTP server in this process (STARTTLS).
	mc, err := mailcatch.Start(mailcatch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	env.mail = mc

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
		// IBKR's nightly restart must not refuse the tests' confirms when
		// they run in it.
		"ORDERTUNE_IBKR_MAINTENANCE": "none",
		// Webhooks go to receivers in this process.
		"ORDERTUNE_WEBHOOK_ALLOW_PRIVATE": "true",
		"ORDERTUNE_SMTP_URL":              "smtp://" + mc.Addr(),
		"ORDERTUNE_MAIL_FROM":             "Ordertune <alerts@ordertune.test>",
	}
	env.vars = vars
	cfg, err := config.Load(func(k string) string { return vars[k] }, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MailTLS = mc.ClientTLS()
	pool, err := postgres.Open(t.Context(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	env.pool = pool
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

	requests *requestLog // failed and refused requests (browser_console_test.go)
}

// newTab opens a tab at desktop size in a fresh browser context. It fails
// t at the end if the page logged an error or threw (a CSP violation is
// one), or made a request that failed or was refused other than a person's
// submission the UI answers (browser_console_test.go).
func (e *browserEnv) newTab(t *testing.T) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(e.browser, chromedp.WithNewBrowserContext())
	// A bound for a whole flow of scenarios in one tab, on a busy machine.
	ctx, cancelTimeout := context.WithTimeout(ctx, 25*time.Minute)
	tb := &tab{t: t, tabState: &tabState{env: e, ctx: ctx}}
	tb.requests = watchRequests(ctx)
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
		time.Sleep(300 * time.Millisecond) // the last events of the page
		cancelTimeout()
		cancel()
		<-done
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, p := range tb.problems {
			t.Errorf("browser console: %s", p)
		}
		for _, r := range tb.requests.noise(e.base) {
			t.Errorf("browser console: a failed request no person asked for: %s", r)
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
	from := tb.requests.count()
	tb.do(chromedp.Navigate(tb.env.base + path))
	tb.requests.forgiveAborted(from)
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
	// Every time is shown in the exchange's zone (issue 20), through the
	// one formatter, which also gives the reader's local time on hover.
	if bad := eval[string](tb, `(document.body.innerText.match(/.{0,30}\bUTC\b/) || [''])[0]`); bad != "" {
		tb.t.Errorf("page %s shows a time in UTC: %q", name, bad)
	}
	if bad := eval[[]string](tb, `[...document.querySelectorAll('time')].filter(t => !t.title.startsWith('Your time: ')).map(t => t.outerHTML)`); len(bad) != 0 {
		tb.t.Errorf("page %s shows times without the reader's local time on hover: %q", name, bad)
	}
	for _, p := range eval[[]string](tb, nameCheck) {
		tb.t.Errorf("page %s: %s", name, p)
	}
	base := nonFileChars.ReplaceAllString(strings.ToLower(tb.t.Name()+"-"+name), "-")
	// Each width in each colour scheme: axe-core finds no violation, and
	// text meets WCAG AA contrast. The light pictures at both widths and
	// the dark one at desktop width are saved.
	for _, vp := range []struct {
		suffix string
		w, h   int64
	}{{"", desktopWidth, desktopHeight}, {"-phone", phoneWidth, phoneHeight}} {
		tb.do(chromedp.EmulateViewport(vp.w, vp.h))
		for _, scheme := range colorSchemes {
			tb.setColorScheme(scheme)
			where := fmt.Sprintf("page %s (%d px, %s)", name, vp.w, scheme)
			for _, low := range eval[[]string](tb, contrastCheck) {
				tb.t.Errorf("%s: text contrast below WCAG AA: %s", where, low)
			}
			for _, v := range tb.axeViolations() {
				tb.t.Errorf("%s: axe: %s", where, v)
			}
			suffix := vp.suffix
			if scheme != "light" {
				if vp.suffix != "" {
					continue
				}
				suffix += "-" + scheme
			}
			png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
			if err != nil {
				tb.t.Fatalf("screenshot: %v", err)
			}
			if err := os.WriteFile(filepath.Join(tb.env.artifacts, base+suffix+".png"), png, 0o644); err != nil {
				tb.t.Fatal(err)
			}
		}
		tb.setColorScheme("light")
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

// nameCheck lists controls without an accessible name: a field without a
// label, a button or link without text or aria-label, an image without alt.
const nameCheck = `(() => {
  const out = [];
  for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (!e.labels.length && !e.getAttribute('aria-label')) out.push('unlabelled field ' + (e.name || e.id));
  }
  for (const e of document.querySelectorAll('button, a[href]')) {
    if (!e.innerText.trim() && !e.getAttribute('aria-label')) out.push('nameless ' + e.tagName.toLowerCase() + ' ' + e.outerHTML.slice(0, 80));
  }
  for (const e of document.querySelectorAll('img')) {
    if (!e.hasAttribute('alt')) out.push('image without alt ' + e.src.slice(0, 60));
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

// waitDownload waits until the browser reports a download completed and
// returns the file's content (allowAndName names it by the download's GUID).
// download clicks sel, which downloads a file, and returns the file's text.
func (tb *tab) download(sel string) string {
	tb.t.Helper()
	dir := tb.t.TempDir()
	bc := chromedp.FromContext(tb.ctx).BrowserContextID
	// The subscription ends with dctx, which bounds the wait.
	dctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
	defer cancel()
	progress := chromedp.BrowserEvents(dctx, browser.DownloadProgress)
	if _, err := chromedp.CallBrowser(tb.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, BrowserContextID: bc, DownloadPath: dir, EventsEnabled: ptr(true),
	}); err != nil {
		tb.t.Fatal(err)
	}
	tb.click(sel)
	return waitDownload(tb.t, progress, dir)
}

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
