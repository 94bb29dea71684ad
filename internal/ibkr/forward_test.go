package ibkr_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/ibkr"
)

// TestForward: a forwarded request is signed over its query as sent (the
// simulator verifies strictly), comes back unread with IBKR's status, and a
// query that does not parse is refused before anything is sent.
func TestForward(t *testing.T) {
	_, s := newConnectedSimEnv(t)
	ctx := context.Background()
	tests := []struct {
		name       string
		endpoint   string
		query      string
		wantStatus int
		wantIn     string
	}{
		{"stocks with a comma list", "/trsrv/stocks", "symbols=AAPL,MSFT", http.StatusOK, `"MSFT"`},
		{"comma already escaped", "/trsrv/stocks", "symbols=AAPL%2CMSFT", http.StatusOK, `"MSFT"`},
		{"secdef search", "/iserver/secdef/search", "symbol=AAPL&secType=STK", http.StatusOK, `"conid":"265598"`},
		{"unknown route keeps IBKR's 404", "/iserver/nothing", "", http.StatusNotFound, "Not Found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := s.Forward(ctx, http.MethodGet, tc.endpoint, tc.query, http.Header{"Accept": {"application/json"}})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(body), tc.wantIn) {
				t.Fatalf("status %d body %s; want %d containing %s", resp.StatusCode, body, tc.wantStatus, tc.wantIn)
			}
		})
	}
	if _, err := s.Forward(ctx, http.MethodGet, "/trsrv/stocks", "a=%zz", nil); ibkr.KindOf(err) != ibkr.KindRequestFailed {
		t.Errorf("bad query: %v", err)
	}
	if _, err := s.Forward(ctx, http.MethodGet, "trsrv/stocks", "", nil); ibkr.KindOf(err) != ibkr.KindRequestFailed {
		t.Errorf("relative endpoint: %v", err)
	}
	// A pacing wait past the deadline sends nothing and says how long.
	dctx, cancel := context.WithDeadline(ctx, time.Now().Add(time.Second))
	defer cancel()
	if _, err := s.LiveOrders(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := s.Forward(dctx, http.MethodGet, "/iserver/account/orders", "", nil)
	var ie *ibkr.Error
	if ibkr.KindOf(err) != ibkr.KindRateLimited || !errorsAs(err, &ie) || ie.RetryAfter <= 0 {
		t.Errorf("paced forward: %v", err)
	}
}

func errorsAs(err error, target **ibkr.Error) bool {
	e, ok := err.(*ibkr.Error)
	if ok {
		*target = e
	}
	return ok
}

// TestWebSocketTarget: the target is the base URL's /ws with ws scheme and
// the access token, and carries the tickle's session as the api cookie.
func TestWebSocketTarget(t *testing.T) {
	e, s := newConnectedSimEnv(t)
	ctx := context.Background()
	target, err := s.WebSocket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(target.URL)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"scheme": "ws", "host": strings.TrimPrefix(e.srv.URL, "http://"), "path": "/v1/api/ws", "oauth_token": e.in.AccessToken}
	got := map[string]string{"scheme": u.Scheme, "host": u.Host, "path": u.Path, "oauth_token": u.Query().Get("oauth_token")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("target URL (-want +got):\n%s", diff)
	}
	// The simulator also names the session in /iserver/accounts (a second
	// tickle within a second would be paced).
	resp, err := s.Forward(ctx, http.MethodGet, "/iserver/accounts", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var acc struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&acc); err != nil {
		t.Fatal(err)
	}
	if c := target.Header.Get("Cookie"); c != "api="+acc.SessionID || acc.SessionID == "" {
		t.Errorf("cookie = %q, session %q", c, acc.SessionID)
	}
	if target.Header.Get("User-Agent") == "" {
		t.Error("no User-Agent")
	}
	b, _ := json.Marshal(target.URL)
	if strings.Contains(string(b), s.Token().Value) {
		t.Error("the LST leaked into the URL")
	}
}
