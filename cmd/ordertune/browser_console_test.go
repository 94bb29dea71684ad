package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// A clean console on every page (issue 21 item 13): Chromium logs a line
// for every request that fails or answers 4xx/5xx, which the console check
// of newTab cannot tell from the UI's own answers to what a person did. So
// every tab also watches its requests: a failed or aborted one, a 5xx, or a
// refused GET (a page asking for something it should have known it could
// not have: /me while signed out, live prices without a broker) fails the
// test. A 4xx answer to a person's submission (a POST, PUT, PATCH or
// DELETE: a form with an error, a step-up asked for) is the UI's business:
// it shows it. A test that provokes anything else on purpose says so with
// allowFailed.

// failedRequest is one request of a tab that failed or was refused.
type failedRequest struct {
	method, url string
	status      int64  // 0 when no answer came
	errorText   string // why no answer came (net::ERR_ABORTED, …)
}

func (r failedRequest) String() string {
	if r.status == 0 {
		return fmt.Sprintf("%s %s: %s", r.method, r.url, r.errorText)
	}
	return fmt.Sprintf("%s %s: %d", r.method, r.url, r.status)
}

// noise reports whether r is console noise rather than an answer to
// something a person did.
func (r failedRequest) noise() bool {
	if r.status == 0 || r.status >= 500 {
		return true
	}
	return r.method == http.MethodGet || r.method == http.MethodHead
}

// requestLog keeps a tab's failed requests from the moment it is made.
type requestLog struct {
	mu      sync.Mutex
	pending map[network.RequestID]string // request id → method
	urls    map[network.RequestID]string
	failed  []failedRequest
	allowed []string // "METHOD path" prefixes a test provokes on purpose
}

// forgiveAborted drops the requests after the first n that were aborted:
// the test navigated away while the page was still asking (a person's
// browser does that too, without a console line).
func (l *requestLog) forgiveAborted(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := l.failed[:min(n, len(l.failed))]
	for _, r := range l.failed[len(kept):] {
		if r.status == 0 && strings.Contains(r.errorText, "ERR_ABORTED") {
			continue
		}
		kept = append(kept, r)
	}
	l.failed = kept
}

// watchRequests starts recording ctx's failed requests until ctx ends.
func watchRequests(ctx context.Context) *requestLog {
	l := &requestLog{pending: map[network.RequestID]string{}, urls: map[network.RequestID]string{}}
	sent := chromedp.Events(ctx, network.RequestWillBeSent)
	responses := chromedp.Events(ctx, network.ResponseReceived)
	failures := chromedp.Events(ctx, network.LoadingFailed)
	go func() {
		for ev, err := range sent {
			if err != nil {
				return
			}
			l.mu.Lock()
			l.pending[ev.RequestID] = ev.Request.Method
			l.urls[ev.RequestID] = ev.Request.URL
			l.mu.Unlock()
		}
	}()
	go func() {
		for ev, err := range responses {
			if err != nil {
				return
			}
			if ev.Response.Status >= 400 {
				l.add(ev.RequestID, ev.Response.URL, ev.Response.Status, "")
			}
		}
	}()
	go func() {
		for ev, err := range failures {
			if err != nil {
				return
			}
			l.add(ev.RequestID, "", 0, ev.ErrorText)
		}
	}()
	return l
}

func (l *requestLog) add(id network.RequestID, url string, status int64, errorText string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if url == "" {
		url = l.urls[id]
	}
	l.failed = append(l.failed, failedRequest{method: l.pending[id], url: url, status: status, errorText: errorText})
}

// since returns the failed requests after the first n.
func (l *requestLog) since(n int) []failedRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]failedRequest(nil), l.failed[min(n, len(l.failed)):]...)
}

// count is how many failed requests there were so far.
func (l *requestLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.failed)
}

// noise lists the failed requests that are noise and not allowed.
func (l *requestLog) noise(base string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.failed {
		if !r.noise() || l.isAllowed(base, r) {
			continue
		}
		out = append(out, r.String())
	}
	return out
}

func (l *requestLog) isAllowed(base string, r failedRequest) bool {
	path := strings.TrimPrefix(r.url, base)
	for _, a := range l.allowed {
		method, prefix, _ := strings.Cut(a, " ")
		if method == r.method && strings.HasPrefix(path, prefix) {
			return true
		}
	}
	return false
}

// allowFailed lets this tab's requests to "METHOD path-prefix" fail or be
// refused: the test provokes them on purpose (an unknown page, a request
// the test itself makes to prove a refusal, a fault it injected).
func (tb *tab) allowFailed(methodAndPrefix ...string) {
	tb.requests.mu.Lock()
	defer tb.requests.mu.Unlock()
	tb.requests.allowed = append(tb.requests.allowed, methodAndPrefix...)
}

// failedRequests returns a function listing every request of tb that
// failed or was refused from now on, noise or not.
func failedRequests(tb *tab) func() []string {
	from := tb.requests.count()
	return func() []string {
		time.Sleep(300 * time.Millisecond) // let the last events arrive
		var out []string
		for _, r := range tb.requests.since(from) {
			out = append(out, r.String())
		}
		return out
	}
}
