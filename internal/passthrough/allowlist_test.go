package passthrough

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func defaults(t testing.TB) *Allowlist {
	t.Helper()
	a, err := ParseAllowlist(DefaultRoutes())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestMatchAndEndpoint(t *testing.T) {
	a := defaults(t)
	const me = "DU1234567"
	tests := []struct {
		path         string
		wantPattern  string
		wantEndpoint string
		wantErr      error
	}{
		{"iserver/secdef/search", "iserver/secdef/search", "/iserver/secdef/search", nil},
		{"iserver/contract/265598/info", "iserver/contract/{conid}/info", "/iserver/contract/265598/info", nil},
		{"portfolio/DU1234567/summary", "portfolio/{accountId}/summary", "/portfolio/DU1234567/summary", nil},
		{"portfolio/du1234567/summary", "portfolio/{accountId}/summary", "/portfolio/DU1234567/summary", nil},
		{"portfolio/me/positions", "portfolio/{accountId}/positions", "/portfolio/DU1234567/positions", nil},
		{"portfolio/DU7654321/positions", "portfolio/{accountId}/positions", "", ErrForeignAccount},
		{"portfolio/U1234567/positions", "portfolio/{accountId}/positions", "", ErrForeignAccount},
		{"iserver/contract/abc/info", "", "", ErrNotAllowed},
		{"iserver/contract/1234567890123/info", "", "", ErrNotAllowed},
		{"iserver/accounts", "", "", ErrNotAllowed},
		{"iserver/account/DU1234567/orders", "", "", ErrNotAllowed},
		{"portfolio/DU1234567/../DU7654321/summary", "", "", ErrNotAllowed},
		{"portfolio/DU1234567%2Fsummary", "", "", ErrNotAllowed},
		{"portfolio/%2e%2e/summary", "", "", ErrNotAllowed},
		{"Iserver/secdef/search", "", "", ErrNotAllowed},
		{"iserver/secdef/search/", "", "", ErrNotAllowed},
		{"/iserver/secdef/search", "", "", ErrNotAllowed},
		{"iserver//secdef/search", "", "", ErrNotAllowed},
		{"iserver/secdef/search%00", "", "", ErrNotAllowed},
		{"iserver/secdef/%zz", "", "", ErrNotAllowed},
		{"", "", "", ErrNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			m, err := a.Match(tc.path)
			if err == nil {
				var ep string
				ep, err = m.Endpoint(me)
				if diff := cmp.Diff(tc.wantEndpoint, ep); err == nil && diff != "" {
					t.Errorf("endpoint (-want +got):\n%s", diff)
				}
				if m.Pattern != tc.wantPattern {
					t.Errorf("pattern %q, want %q", m.Pattern, tc.wantPattern)
				}
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestParseAllowlist(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"trsrv/stocks, /portfolio/{accountId}/positions/{page}", []string{"trsrv/stocks", "portfolio/{accountId}/positions/{page}"}, false},
		{"a/b,,c", []string{"a/b", "c"}, false},
		{"", nil, true},
		{"a/../b", nil, true},
		{"a//b", nil, true},
		{"a/{}/b", nil, true},
		{"a/b c", nil, true},
	}
	for _, tc := range tests {
		a, err := ParseRouteList(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err = %v", tc.in, err)
			continue
		}
		if err == nil {
			if diff := cmp.Diff(tc.want, a.Patterns()); diff != "" {
				t.Errorf("%q (-want +got):\n%s", tc.in, diff)
			}
		}
	}
}

func TestCheckQuery(t *testing.T) {
	const me = "DU1234567"
	tests := []struct {
		in, want string
		wantErr  error
	}{
		{"", "", nil},
		{"symbols=AAPL,MSFT", "symbols=AAPL,MSFT", nil},
		{"accountId=DU1234567", "accountId=DU1234567", nil},
		{"acctId=du1234567&days=3", "acctId=du1234567&days=3", nil},
		{"accountId=me", "accountId=DU1234567", nil},
		{"accountId=DU7654321", "", ErrForeignAccount},
		{"AccountIds=DU1234567,DU7654321", "", ErrForeignAccount},
		{"account=", "", ErrForeignAccount},
	}
	for _, tc := range tests {
		got, err := CheckQuery(tc.in, me)
		if !errors.Is(err, tc.wantErr) || got != tc.want {
			t.Errorf("%q: %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	if _, err := CheckQuery("a=%zz", me); err == nil {
		t.Error("malformed query accepted")
	}
}

func TestCopyHeaders(t *testing.T) {
	src := http.Header{
		"Content-Type":      {"application/json;charset=utf-8"},
		"Content-Length":    {"12"},
		"Retry-After":       {"3"},
		"Connection":        {"keep-alive, X-Hop"},
		"X-Hop":             {"1"},
		"Keep-Alive":        {"timeout=5"},
		"Transfer-Encoding": {"chunked"},
		"Set-Cookie":        {"x-sess-id=abc; Path=/"},
		"Upgrade":           {"h2c"},
		"X-Request-Id":      {"ibkr-1"},
	}
	dst := http.Header{}
	copyHeaders(dst, src)
	want := http.Header{
		"Content-Type":   {"application/json;charset=utf-8"},
		"Content-Length": {"12"},
		"Retry-After":    {"3"},
		"X-Request-Id":   {"ibkr-1"},
	}
	if diff := cmp.Diff(want, dst); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
}

func TestRedactPath(t *testing.T) {
	tests := map[string]string{
		"/api/v1/ibkr/portfolio/DU1234567/positions": "/api/v1/ibkr/portfolio/{accountId}/positions",
		"/api/v1/ibkr/portfolio/u1234567/summary":    "/api/v1/ibkr/portfolio/{accountId}/summary",
		"/api/v1/ibkr/portfolio/me/summary":          "/api/v1/ibkr/portfolio/me/summary",
		"/api/v1/ibkr/iserver/contract/265598/info":  "/api/v1/ibkr/iserver/contract/265598/info",
		"/api/v1/ibkr/iserver/account/orders":        "/api/v1/ibkr/iserver/account/orders",
		"/x/DF12/U":                                  "/x/{accountId}/U",
	}
	for in, want := range tests {
		if got := RedactPath(in); got != want {
			t.Errorf("RedactPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUpgradeChecks(t *testing.T) {
	tests := []struct {
		name           string
		header         http.Header
		host           string
		patterns       []string
		upgrade, allow bool
	}{
		{"browser same origin", http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}, "Origin": {"https://ot.example"}}, "ot.example", nil, true, true},
		{"no origin", http.Header{"Connection": {"upgrade"}, "Upgrade": {"WebSocket"}}, "ot.example", nil, true, true},
		{"cross origin", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Origin": {"https://evil.example"}}, "ot.example", nil, true, false},
		{"allowed pattern", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Origin": {"https://app.ot.example"}}, "127.0.0.1:8080", []string{"*.ot.example"}, true, true},
		{"plain GET", http.Header{}, "ot.example", nil, false, true},
	}
	for _, tc := range tests {
		r := &http.Request{Header: tc.header, Host: tc.host, URL: &url.URL{Path: "/ws"}}
		if got := isUpgrade(r); got != tc.upgrade {
			t.Errorf("%s: isUpgrade = %v", tc.name, got)
		}
		if got := originAllowed(r, tc.patterns); got != tc.allow {
			t.Errorf("%s: originAllowed = %v", tc.name, got)
		}
	}
}

// FuzzMatch: no path panics, and an allowed path only ever yields an
// endpoint of safe segments that names no account but the tenant's.
func FuzzMatch(f *testing.F) {
	a := defaults(f)
	for _, s := range []string{"portfolio/me/summary", "portfolio/DU1/positions", "iserver/contract/1/info", "a/%2F/b", "..", "portfolio/%44U1/summary"} {
		f.Add(s, "a=1")
	}
	f.Fuzz(func(t *testing.T, p, q string) {
		const me = "DU1234567"
		m, err := a.Match(p)
		if err == nil {
			ep, err := m.Endpoint(me)
			if err == nil {
				for _, seg := range strings.Split(strings.TrimPrefix(ep, "/"), "/") {
					if !safeSegment(seg) {
						t.Fatalf("%q gave endpoint %q with unsafe segment %q", p, ep, seg)
					}
					if looksLikeAccount(seg) && seg != me {
						t.Fatalf("%q reaches account %q", p, seg)
					}
				}
			}
		}
		if out, err := CheckQuery(q, me); err == nil {
			v, perr := url.ParseQuery(out)
			if perr != nil {
				t.Fatalf("CheckQuery(%q) = %q does not parse", q, out)
			}
			for k, vs := range v {
				if accountParam(k) {
					for _, x := range vs {
						if !strings.EqualFold(x, me) && !strings.Contains(x, ",") {
							t.Fatalf("CheckQuery(%q) passes account %q", q, x)
						}
					}
				}
			}
		}
	})
}

// FuzzCheckQuery: no query panics the check, and an accepted query is one
// IBKR can verify (only RFC 3986 query characters, escapes well formed).
func FuzzCheckQuery(f *testing.F) {
	for _, q := range []string{"symbols=AAPL", "conids=265598,272093&fields=31,84", "accountId=me", "a=b#c", "a=%zz", "a=%",
		"accountId=DU7654321", "a=\xff", "a b=c", "x=%23"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out, err := CheckQuery(q, "DU1234567")
		if err != nil {
			return
		}
		if err := CheckRawQuery(out); err != nil {
			t.Errorf("CheckQuery(%q) accepted %q, which IBKR cannot verify: %v", q, out, err)
		}
	})
}
