package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/go-cmp/cmp"
)

// The dashboard's positions panel (issue 19: positions "with market value
// and unrealized P&L on the dashboard"): the scenarios of TestBrowserUI
// below, and checks the Confirm and Portfolio scenarios make of it.

// panelBody is the dashboard panel's region; data-state says which state
// it shows (loading, no-broker, error, empty, list).
const panelBody = `.positions-panel .positions-body`

// apiPosition is one item of GET /api/v1/positions, as the test reads it.
type apiPosition struct {
	Ticker        string `json:"ticker"`
	Quantity      string `json:"quantity"`
	MarketValue   string `json:"market_value"`
	UnrealizedPnL string `json:"unrealized_pnl"`
	Exit          *struct {
		ConfirmationID string `json:"confirmation_id"`
		Status         string `json:"status"`
		Quantity       int64  `json:"quantity"`
	} `json:"exit"`
}

// apiPositions asks the API for the positions from the page, with its
// cookie, as the pages do.
func (tb *tab) apiPositions() []apiPosition {
	tb.t.Helper()
	s := evalAwait[string](tb, `fetch('/api/v1/positions', {headers: {Accept: 'application/json'}}).then(async (r) => {
  if (!r.ok) throw new Error('GET /api/v1/positions: ' + r.status);
  return JSON.stringify((await r.json()).items);
})`)
	var out []apiPosition
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		tb.t.Fatalf("positions %s: %v", s, err)
	}
	return out
}

// positionCells reads the row of ticker in the positions table under
// scope: column label → text, and the P&L amount's class.
func (tb *tab) positionCells(scope, ticker string) map[string]string {
	tb.t.Helper()
	return eval[map[string]string](tb, `(() => {
  const row = document.querySelector(`+jsString(scope+` tr[data-position="`+ticker+`"]`)+`);
  const out = Object.fromEntries([...row.children].map((c) => [c.dataset.label, c.innerText.trim()]));
  out.pnlClass = row.querySelector('[data-label="Unrealized P&L"] span').className;
  return out;
})()`)
}

// shownAndAPI opens path, waits for ticker's row in the positions under
// scope and returns the row with the API's answer for ticker. The server
// caches positions for seconds and the simulator's prices move, so the
// API is asked before and after the page: the same answer both times is
// the one the page got.
func (tb *tab) shownAndAPI(path, scope, ticker string) (map[string]string, apiPosition) {
	tb.t.Helper()
	for range 5 {
		before := tb.apiPositions()
		tb.open(path)
		tb.waitJS(`document.querySelector(` + jsString(scope+`[data-state=list] tr[data-position="`+ticker+`"]`) + `)`)
		cells := tb.positionCells(scope, ticker)
		after := tb.apiPositions()
		if !cmp.Equal(before, after) {
			continue
		}
		for _, p := range after {
			if p.Ticker == ticker {
				return cells, p
			}
		}
		tb.t.Fatalf("the page shows %s but the API does not: %+v", ticker, after)
	}
	tb.t.Fatalf("the API's positions changed around each of 5 page loads")
	return nil, apiPosition{}
}

// usd writes a decimal string as the UI's money formatter does:
// "4949.6" → "$4,949.60", "-3.1" → "−$3.10".
func usd(v string) string {
	neg := strings.HasPrefix(v, "-")
	i, f, _ := strings.Cut(strings.TrimPrefix(v, "-"), ".")
	var b strings.Builder
	for k, r := range i {
		if k > 0 && (len(i)-k)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	for len(f) < 2 {
		f += "0"
	}
	out := "$" + b.String() + "." + f
	if neg && strings.Trim(v, "-0.") != "" {
		out = "−" + out
	}
	return out
}

// pnlWords is how an unrealized P&L reads: its sign in text (+ or −,
// nothing for zero) and the colour class that goes with it.
func pnlWords(v string) (text, class string) {
	switch {
	case strings.Trim(v, "-0.") == "":
		return usd(v), ""
	case strings.HasPrefix(v, "-"):
		return usd(v), "pnl-down"
	}
	return "+" + usd(v), "pnl-up"
}

// dashboardNoBroker: before any broker connection the dashboard's panel
// says so in one line with the way to Settings → Broker; it is no error,
// and the page never asks for positions it cannot have.
func (f *uiFlow) dashboardNoBroker(t *testing.T) {
	tb := f.tab.on(t)
	tb.open("/")
	tb.waitJS(`document.querySelector('` + panelBody + `[data-state=no-broker]')`)
	if got := tb.text(panelBody); !strings.Contains(got, "No broker connection") {
		t.Errorf("the panel without a connection says %q", got)
	}
	if n := eval[int](tb, `document.querySelectorAll('`+panelBody+` a[href="/settings/broker"]').length`); n != 1 {
		t.Errorf("%d links to Settings → Broker in the panel, want 1", n)
	}
	if n := eval[int](tb, `document.querySelectorAll('.positions-panel [role=alert], .positions-panel .notice-bad').length`); n != 0 {
		t.Error("no broker connection is shown as an error")
	}
	if n := eval[int](tb, `performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/v1/positions')).length`); n != 0 {
		t.Errorf("the dashboard asked for positions %d times without a broker connection", n)
	}
	if n := eval[int](tb, `document.querySelectorAll('.positions-panel a[href="/portfolio"]').length`); n != 1 {
		t.Error("the panel has no link to the Portfolio page")
	}
	tb.screenshot("no-broker")
}

// panelShowsFill: the dashboard that saw the AAPL entry fill (its panel
// read the positions before the order, empty, and the server cached
// them) shows the position without a reload.
func (f *uiFlow) panelShowsFill(t *testing.T, tb *tab) {
	t.Helper()
	tb.waitJS(`document.querySelector('` + panelBody + `[data-state=list] tr[data-position=AAPL]')`)
	if got := tb.positionCells(panelBody, "AAPL")["Shares"]; got != "26" {
		t.Errorf("the panel's AAPL shares after the fill = %q, want 26", got)
	}
}

// dashboardPositions: the panel shows the filled AAPL entry as the API
// and the Portfolio page do; when IBKR fails it says so with a Retry that
// works from the keyboard, and the signals stay.
func (f *uiFlow) dashboardPositions(t *testing.T) {
	tb := f.tab.on(t)
	dash, api := tb.shownAndAPI("/", panelBody, "AAPL")
	text, class := pnlWords(api.UnrealizedPnL)
	want := map[string]string{
		"Ticker": "AAPL", "Shares": api.Quantity, "Value": usd(api.MarketValue),
		"Unrealized P&L": text, "pnlClass": class, "Exit": "—",
	}
	if diff := cmp.Diff(want, dash); diff != "" {
		t.Errorf("the dashboard's AAPL position, against the API's %+v (-want +got):\n%s", api, diff)
	}
	if api.Quantity != "26" {
		t.Errorf("the API holds %s AAPL, want the 26 the entry bought", api.Quantity)
	}
	tb.screenshot("position")

	port, api := tb.shownAndAPI("/portfolio", `main .positions-body`, "AAPL")
	text, class = pnlWords(api.UnrealizedPnL)
	for k, v := range map[string]string{"Shares": api.Quantity, "Value": usd(api.MarketValue), "Unrealized P&L": text, "pnlClass": class} {
		if port[k] != v {
			t.Errorf("Portfolio's AAPL %s = %q, want %q as the API says", k, port[k], v)
		}
	}

	// IBKR answers 503 to the portfolio endpoints. Refresh from IBKR
	// drops the server's cached positions, so the next read asks IBKR.
	tb.allowFailed("GET /api/v1/positions") // the fault below, on purpose
	f.env.simCall(t, http.MethodPost, "/sim/faults", map[string]any{"path": "/portfolio", "kind": "status", "value": 503}, nil)
	cleared := false
	clear := func() {
		if !cleared {
			cleared = true
			f.env.simCall(t, http.MethodDelete, "/sim/faults", nil, nil)
		}
	}
	defer clear()
	tb.click(`[data-action=refresh]`)
	tb.waitJS(`document.querySelector('main .positions-body[data-state=error] [data-action=retry-positions]')`)
	tb.open("/")
	tb.waitJS(`document.querySelector('` + panelBody + `[data-state=error]')`)
	if got := tb.text(panelBody + ` [role=alert]`); !strings.Contains(got, "Positions could not be read from IBKR. IBKR did not answer") {
		t.Errorf("the panel with IBKR failing says %q", got)
	}
	if n := eval[int](tb, `document.querySelectorAll('tr[data-signal-id]').length`); n == 0 {
		t.Error("the signals went away with IBKR's failure")
	}
	tb.screenshot("ibkr-fails")

	// Retry, from the keyboard, once IBKR answers again: the table comes
	// and the focus goes to the panel's heading, not to the page's top.
	clear()
	tb.waitJS(`(document.querySelector('[data-action=retry-positions]').focus(), document.activeElement.dataset.action === 'retry-positions')`)
	tb.do(chromedp.KeyEvent(kb.Enter))
	tb.waitJS(`document.querySelector('` + panelBody + `[data-state=list] tr[data-position=AAPL]')`)
	if got := eval[string](tb, `document.activeElement.id`); got != "dash-positions-h" {
		t.Errorf("focus after a successful Retry is on #%s, want the panel's heading", got)
	}
}

// panelShowsExit: after the exit of AAPL is confirmed, the dashboard's
// panel marks the position, linking the exit's confirmation, as the API
// says.
func (f *uiFlow) panelShowsExit(t *testing.T, tb *tab) {
	t.Helper()
	mark := panelBody + ` tr[data-position=AAPL] a[data-exit]`
	tb.waitJS(`document.querySelector('` + mark + `')`)
	var exit *apiPosition
	for _, p := range tb.apiPositions() {
		if p.Ticker == "AAPL" {
			exit = &p
		}
	}
	if exit == nil || exit.Exit == nil {
		t.Fatalf("the API shows no exit of AAPL: %+v", exit)
	}
	if got := tb.text(mark); got != "Exit confirmed · 26" {
		t.Errorf("the panel's exit mark says %q", got)
	}
	if got := eval[string](tb, `document.querySelector('`+mark+`').getAttribute('href')`); got != "/confirmations/"+exit.Exit.ConfirmationID {
		t.Errorf("the exit mark links %s, want the exit's confirmation %s", got, exit.Exit.ConfirmationID)
	}
	tb.screenshot("dashboard-exit")
}
