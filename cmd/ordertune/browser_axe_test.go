package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// axeSource is axe-core, vendored for the tests only (testdata/axe/README.md).
//
//go:embed testdata/axe/axe.min.js
var axeSource string

// colorSchemes are the schemes every photographed page is checked in: the
// UI follows the system's prefers-color-scheme.
var colorSchemes = []string{"light", "dark"}

// setColorScheme makes the page see prefers-color-scheme: scheme.
func (tb *tab) setColorScheme(scheme string) {
	tb.t.Helper()
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
	}); err != nil {
		tb.t.Fatalf("prefers-color-scheme %s: %v", scheme, err)
	}
}

// axeRun runs every axe-core rule of WCAG 2.1 A and AA and axe's best
// practices, and lists the violations as "rule (impact): target, …". The
// result is JSON, so the page's own objects never cross DevTools.
const axeRun = `axe.run(document, {
  runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']},
  resultTypes: ['violations'],
}).then((r) => JSON.stringify(r.violations.map((v) => ({
  id: v.id, impact: v.impact || '', help: v.help,
  nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ') + (n.failureSummary ? ' — ' + n.failureSummary.replace(/\s+/g, ' ').slice(0, 160) : '')),
  count: v.nodes.length,
}))))`

// axeViolations runs axe-core in the page (injecting it first when this
// document has not got it) and returns its violations, one line each.
func (tb *tab) axeViolations() []string {
	tb.t.Helper()
	if !eval[bool](tb, `typeof window.axe === 'object'`) {
		// Evaluated through DevTools: the page's CSP, which forbids any
		// script that is not the UI's own, does not apply to it.
		eval[bool](tb, axeSource+"\n;true")
	}
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](axeRun, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("axe: %v", err)
	}
	var vs []struct {
		ID, Impact, Help string
		Nodes            []string
		Count            int
	}
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		tb.t.Fatalf("axe's answer %.200s: %v", out, err)
	}
	var lines []string
	for _, v := range vs {
		lines = append(lines, fmt.Sprintf("%s (%s, %d): %s — %s", v.ID, v.Impact, v.Count, v.Help, strings.Join(v.Nodes, "; ")))
	}
	return lines
}

// TestAxeFindsViolations shows the check can fail: axe, injected the way
// screenshot does it, reports a page's unnamed image and its low-contrast
// text, in the dark scheme too.
func TestAxeFindsViolations(t *testing.T) {
	env := startBrowserEnv(t)
	tb := env.newTab(t)
	tb.do(chromedp.Navigate(`data:text/html,<!doctype html><html lang=en><title>t</title><main><h1>x</h1><img src="data:,"><p style="color:%23777;background:%23888">faint</p></main>`))
	for _, scheme := range colorSchemes {
		tb.setColorScheme(scheme)
		var ids []string
		for _, v := range tb.axeViolations() {
			ids = append(ids, strings.SplitN(v, " ", 2)[0])
		}
		for _, want := range []string{"image-alt", "color-contrast"} {
			if !slices.Contains(ids, want) {
				t.Errorf("%s: axe found %q, want %s among them", scheme, ids, want)
			}
		}
	}
}
