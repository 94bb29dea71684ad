package main

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// portfolio: the AAPL entry filled at the open shows as a position; once
// its exit is confirmed the position says so; after the next open fills it
// and the page refreshes from IBKR, the position is gone, the P&L is the round
// trip's to the cent (exit − entry) × shares − both commissions, the chart
// has its point, and the CSV holds both trades with words, not ids.
func (f *uiFlow) portfolio(t *testing.T) {
	tb := f.tab.on(t)
	tb.do(chromedp.Click(`//nav//a[normalize-space(.)='Portfolio']`))
	tb.waitPath("/portfolio")
	pos := `.positions-body tr[data-position=AAPL]`
	tb.waitJS(`document.querySelector('` + pos + `')`)
	cells := eval[[]string](tb, `[...document.querySelectorAll('`+pos+` > *')].map(c => c.innerText.trim())`)
	if len(cells) != 7 || cells[1] != "26" || cells[6] != "—" {
		t.Errorf("AAPL position = %q, want 26 shares and no exit", cells)
	}
	tb.screenshot("position")

	// Confirm the exit published by NothingToSell.
	tb.open("/")
	row := `tr[data-ticker=AAPL] [data-action=confirm]`
	tb.waitJS(`document.querySelector('` + row + `')`)
	tb.click(row)
	tb.waitJS(`document.querySelector('dialog[open] [data-fact=quantity]') && !document.querySelector('dialog[open] .btn-primary').disabled`)
	tb.do(chromedp.Click(`//dialog//button[normalize-space(.)='Confirm Sell']`))
	tb.waitJS(`!document.querySelector('dialog') && document.querySelector('.confirm-flash .notice')`)
	f.panelShowsExit(t, tb)

	tb.open("/portfolio")
	tb.waitJS(`document.querySelector('` + pos + ` .badge')`)
	if got := tb.text(pos + ` .badge`); !strings.Contains(got, "Exit confirmed · 26") {
		t.Errorf("the position's exit says %q", got)
	}
	tb.screenshot("exit-confirmed")

	// The exit was published with the form's default, market on open.
	f.env.simCall(t, http.MethodPost, "/sim/auction/open", map[string]any{"prices": map[string]float64{"AAPL": 190.37}}, nil)
	var execs []ibkrsim.SimExecution
	f.env.simCall(t, http.MethodGet, "/sim/executions", nil, &execs)
	if len(execs) != 2 || execs[0].Side != "BUY" || execs[1].Side != "SELL" {
		t.Fatalf("executions at the simulator: %+v", execs)
	}
	cents := func(v float64) int64 { return int64(v*100 + 0.5) }
	pnl := (cents(execs[1].Price)-cents(execs[0].Price))*26 - cents(execs[0].Commission) - cents(execs[1].Commission)
	want := fmt.Sprintf("%d.%02d", pnl/100, pnl%100)
	if pnl < 0 {
		want = fmt.Sprintf("-%d.%02d", -pnl/100, -pnl%100)
	}

	tb.click(`[data-action=refresh]`)
	tb.waitJS(`document.querySelector('.pnl-summary') && document.querySelector('.pnl-summary').dataset.total !== '0.00' && document.querySelector('.positions-body .empty-row')`)
	if got := eval[string](tb, `document.querySelector('.pnl-summary').dataset.total`); got != want {
		t.Errorf("realized P&L = %s, want %s: (%.2f − %.2f) × 26 − %.2f − %.2f", got, want, execs[1].Price, execs[0].Price, execs[0].Commission, execs[1].Commission)
	}
	if n := eval[int](tb, `document.querySelectorAll('svg.pnl-chart polyline, svg.pnl-chart circle').length`); n != 2 {
		t.Errorf("the chart has %d marks, want its line and one point", n)
	}
	if got := eval[string](tb, `document.querySelector('svg.pnl-chart').textContent`); strings.Contains(got, "[object") {
		t.Errorf("the chart holds text %q", got)
	}
	if got := eval[string](tb, `document.querySelector('svg.pnl-chart title').textContent`); !strings.Contains(got, want) {
		t.Errorf("the chart's title = %q, want the total %s", got, want)
	}
	if n := eval[int](tb, `document.querySelectorAll('.trades-body tr[data-trade-id]').length`); n != 2 {
		t.Errorf("%d trades listed, want 2", n)
	}
	tb.screenshot("round-trip")

	// The CSV: a byte order mark, the columns, both trades with the
	// user's e-mail and the ticker, and no internal id.
	csv := tb.download(`a[data-action=csv]`)
	if !strings.HasPrefix(csv, "\uFEFF") {
		t.Error("the CSV has no byte order mark")
	}
	lines := strings.Split(strings.TrimSpace(strings.TrimPrefix(csv, "\uFEFF")), "\n")
	if len(lines) != 3 || strings.TrimSpace(lines[0]) != "executed_at,user_email,mode,account,ticker,side,quantity,price,commission,strategy,placed_by,broker_execution_id,broker_order_id" {
		t.Fatalf("CSV = %q", lines)
	}
	for _, l := range lines[1:] {
		if !strings.Contains(l, f.me.email) || !strings.Contains(l, ",AAPL,") || !strings.Contains(l, ",ordertune,") {
			t.Errorf("CSV row %q lacks the e-mail, the ticker or who placed it", l)
		}
	}
	if regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`).MatchString(csv) {
		t.Error("the CSV holds a UUID")
	}

	// The entry's order page shows its commission and that it is closed.
	tb.open("/confirmations")
	tb.waitJS(`document.querySelector('a[href^="/confirmations/"]')`)
	href := eval[string](tb, `[...document.querySelectorAll('tr')].filter(r => r.innerText.includes('AAPL') && r.innerText.includes('Buy')).map(r => r.querySelector('a[href^="/confirmations/"]').getAttribute('href'))[0] || ''`)
	if href == "" {
		t.Fatal("no AAPL buy in My confirmations")
	}
	tb.open(href)
	tb.waitJS(`document.querySelector('[data-fact=commission] dd')`)
	if got := tb.text(`[data-fact=commission] dd`); got != fmt.Sprintf("$%.2f", execs[0].Commission) {
		t.Errorf("the entry's commission = %q, want $%.2f", got, execs[0].Commission)
	}
	if !eval[bool](tb, `!!document.querySelector('[data-fact=closed]')`) {
		t.Error("the entry's page does not say its position is closed")
	}
	// ... and the order's execution: New York time through the page's one
	// formatter (its <time> holds the instant), the shares, the price and
	// the commission.
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	rows := eval[[]string](tb, `[...document.querySelectorAll('table.executions tbody tr[data-execution-id]')].map(r => [...r.children].map(c => c.innerText.trim()).join(' | '))`)
	wantRow := fmt.Sprintf("%s | 26 | $%.2f | $%.2f", execs[0].At.In(ny).Format("2006-01-02 15:04:05 MST"), execs[0].Price, execs[0].Commission)
	if len(rows) != 1 || rows[0] != wantRow {
		t.Errorf("the entry's executions = %q, want [%q]", rows, wantRow)
	}
	if at := eval[string](tb, `document.querySelector('table.executions time').getAttribute('datetime')`); at != execs[0].At.UTC().Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z") {
		t.Errorf("the execution's <time datetime> = %q, want %s", at, execs[0].At.UTC())
	}
	tb.screenshot("entry-closed")
}
