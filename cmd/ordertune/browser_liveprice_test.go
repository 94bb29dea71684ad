package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
)

// The live price next to the reference close: the dashboard and the
// confirm dialog ask the subscriber's own IBKR session (the simulator,
// through Ordertune's pass-through) for snapshots.

// decimalRE is a positive decimal as IBKR's snapshot fields carry it once
// any letter prefix ("C187.25") is stripped.
var decimalRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// evalAwait evaluates a JavaScript expression that yields a promise and
// decodes what it resolves to.
func evalAwait[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// livePriceView is what a .live-price element shows and carries.
type livePriceView struct {
	Price   string `json:"price"`
	Conid   string `json:"conid"`
	Updated string `json:"updated"`
	State   string `json:"state"`
	Text    string `json:"text"`
	Title   string `json:"title"`
}

func (tb *tab) livePrice(sel string) livePriceView {
	tb.t.Helper()
	return eval[livePriceView](tb, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return {price: e.dataset.price || '', conid: e.dataset.conid || '', updated: e.dataset.updated || '', state: e.dataset.state || '', text: e.innerText.trim(), title: e.title}; })()`, sel))
}

// checkLivePrice waits until the element at sel shows a price, and checks
// it against the reference close and against what the same pass-through
// says right now (the simulator's price moves with the clock, within
// ±0.5 % of the reference close plus a cent-sized wobble). It returns the
// snapshot's time, for a caller that waits for the next one.
func (f *browserFlow) checkLivePrice(tb *tab, sel, refClose string) string {
	tb.t.Helper()
	t := tb.t
	tb.waitJS(fmt.Sprintf(`document.querySelector(%q) && document.querySelector(%q).dataset.price`, sel, sel))
	got := tb.livePrice(sel)
	if got.State != "live" || !decimalRE.MatchString(got.Price) {
		t.Errorf("live price %+v: want state live and a positive decimal", got)
	}
	if !strings.HasPrefix(got.Text, "$"+got.Price) {
		t.Errorf("live price text %q, want it to start with $%s", got.Text, got.Price)
	}
	if _, err := strconv.ParseInt(got.Updated, 10, 64); err != nil {
		t.Errorf("live price time %q: %v", got.Updated, err)
	}

	// The conid the page uses is the US listing IBKR names for the ticker.
	ticker := eval[string](tb, fmt.Sprintf(`document.querySelector(%q).dataset.ticker`, sel))
	stocks := evalAwait[map[string][]struct {
		Contracts []struct {
			Conid int64 `json:"conid"`
			IsUS  bool  `json:"isUS"`
		} `json:"contracts"`
	}](tb, fmt.Sprintf(`fetch('/api/v1/ibkr/trsrv/stocks?symbols=%s').then(r => r.json())`, ticker))
	var want int64
	for _, e := range stocks[ticker] {
		for _, c := range e.Contracts {
			if c.IsUS && want == 0 {
				want = c.Conid
			}
		}
	}
	if want == 0 || got.Conid != strconv.FormatInt(want, 10) {
		t.Errorf("live price for %s uses conid %q, want the US listing %d", ticker, got.Conid, want)
	}

	snap := evalAwait[[]map[string]any](tb, fmt.Sprintf(`fetch('/api/v1/ibkr/iserver/marketdata/snapshot?conids=%s&fields=31').then(r => r.json())`, got.Conid))
	if len(snap) != 1 {
		t.Fatalf("snapshot through the pass-through: %v", snap)
	}
	last, _ := snap[0]["31"].(string)
	price, err1 := strconv.ParseFloat(got.Price, 64)
	now, err2 := strconv.ParseFloat(last, 64)
	ref, err3 := strconv.ParseFloat(refClose, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatalf("prices: page %q, snapshot %q, reference %q", got.Price, last, refClose)
	}
	if price < ref*0.97 || price > ref*1.03 {
		t.Errorf("live price %s is more than 3 %% from the reference close %s", got.Price, refClose)
	}
	if price < now*0.98 || price > now*1.02 {
		t.Errorf("live price on the page %s, the pass-through's snapshot says %s", got.Price, last)
	}
	return got.Updated
}

// noBrokerLivePrice checks that someone without a broker connection sees a
// muted placeholder that says why, and the table otherwise as usual.
func (f *browserFlow) noBrokerLivePrice(tb *tab, row string) {
	tb.t.Helper()
	sel := row + ` .live-price`
	tb.waitJS(fmt.Sprintf(`document.querySelector(%q) && document.querySelector(%q).dataset.state === 'unavailable'`, sel, sel))
	got := tb.livePrice(sel)
	tb.t.Logf("live price without a broker: %+v", got)
	if got.Price != "" || !strings.HasPrefix(got.Text, "—") || !strings.Contains(got.Text, "Live price unavailable") {
		tb.t.Errorf("live price without a broker: %+v, want a dash and the words for screen readers", got)
	}
	if !strings.HasPrefix(got.Title, "Live price unavailable: ") || len(got.Title) <= len("Live price unavailable: ") {
		tb.t.Errorf("live price title without a broker = %q, want the reason", got.Title)
	}
	if dash := eval[string](tb, fmt.Sprintf(`(document.querySelector(%q) || {innerText: ''}).innerText`, sel+` .muted[aria-hidden=true]`)); dash != "—" {
		tb.t.Errorf("placeholder = %q, want a muted dash", dash)
	}
	if eval[int](tb, `document.querySelectorAll('`+row+` [data-action=confirm]').length`) != 1 {
		tb.t.Error("the row lost its Confirm button while the live price was unavailable")
	}
	// The refused pass-through call is only the browser's network line,
	// which the tab ignores; the page itself logs nothing and throws nothing.
	tb.mu.Lock()
	problems := append([]string(nil), tb.problems...)
	tb.mu.Unlock()
	if len(problems) != 0 {
		tb.t.Errorf("browser console without a broker: %q", problems)
	}
}

// livePriceValues runs the page's own parser of IBKR's market-data values
// (the module the dashboard imports) over the shapes IBKR sends.
func (f *browserFlow) livePriceValues(t *testing.T) {
	tb := f.subTab.on(t)
	tb.open("/")
	tests := []struct {
		in   any
		want string
	}{
		{"187.30", "187.30"},
		{"C187.25", "187.25"}, // prior close, before the first trade
		{"H187.3", "187.3"},   // halted
		{"1,234.50", "1234.50"},
		{187.3, "187.3"},
		{"", ""},
		{nil, ""},
		{"0", ""},
		{"0.00", ""},
		{"-1.50", ""},
		{"N/A", ""},
		{"187.30x", ""},
		{"1e3", ""},
	}
	in := make([]any, len(tests))
	for i, tc := range tests {
		in[i] = tc.in
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	got := evalAwait[[]string](tb, `import('/assets/js/liveprice.js').then(m => `+string(b)+`.map(m.priceValue))`)
	want := make([]string, len(tests))
	for i, tc := range tests {
		want[i] = tc.want
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("priceValue of %s (-want +got):\n%s", b, diff)
	}
}

// livePricePausesWhenHidden hides the tab (as the browser does for a
// background tab: visibilityState and a visibilitychange event) and sees
// the live prices stop asking IBKR, then start again at once when shown.
func (f *browserFlow) livePricePausesWhenHidden(t *testing.T) {
	tb := f.subTab.on(t)
	tb.open("/")
	tb.waitJS(`document.querySelector('tr[data-ticker=AAPL] .live-price[data-price]')`)
	const snapshots = `performance.getEntriesByType('resource').filter(e => e.name.includes('/marketdata/snapshot')).length`
	setVisibility := func(state string) {
		eval[bool](tb, `(() => { Object.defineProperty(document, 'visibilityState', { value: '`+state+`', configurable: true });
			document.dispatchEvent(new Event('visibilitychange')); return true; })()`)
	}
	setVisibility("hidden")
	// A request already on its way may still land; after that, nothing for
	// more than two polling periods (3 s each).
	before := evalAwait[int](tb, `new Promise(r => setTimeout(() => r(`+snapshots+`), 1500))`)
	after := evalAwait[int](tb, `new Promise(r => setTimeout(() => r(`+snapshots+`), 7000))`)
	if after != before {
		t.Errorf("a hidden tab asked IBKR for %d snapshots in 7 s, want none", after-before)
	}
	setVisibility("visible")
	tb.waitJS(snapshots + ` > ` + strconv.Itoa(after))
}
