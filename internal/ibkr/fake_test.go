package ibkr

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeIBKR is a small stand-in for IBKR's API used to produce faults the
// simulator cannot (dropped connections, odd bodies). It checks that every
// signed request carries a User-Agent and a signature over what was sent.
type fakeIBKR struct {
	t      *testing.T
	srv    *httptest.Server
	lstKey []byte
	v      *vectorFile

	mu       sync.Mutex
	routes   map[string]http.HandlerFunc
	requests []recorded
}

type recorded struct {
	Method, Path, Query, Auth, UserAgent, ContentType string
	Body                                              string
}

func newFake(t *testing.T) *fakeIBKR {
	t.Helper()
	v := loadVectors(t)
	f := &fakeIBKR{t: t, v: v, routes: map[string]http.HandlerFunc{}, lstKey: vectorSigner(t, v).key}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	f.handle("POST /oauth/live_session_token", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, v.LSTCases[0].Server.ResponseBody)
	})
	return f
}

func (f *fakeIBKR) baseURL() string { return f.srv.URL + "/v1/api" }

// handle sets the handler for "METHOD /path" below /v1/api.
func (f *fakeIBKR) handle(pattern string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[pattern] = h
}

// respond sets a fixed answer for "METHOD /path".
func (f *fakeIBKR) respond(pattern string, status int, body string) {
	f.handle(pattern, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
}

func (f *fakeIBKR) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

func (f *fakeIBKR) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	path := strings.TrimPrefix(r.URL.Path, "/v1/api")
	f.mu.Lock()
	f.requests = append(f.requests, recorded{
		Method: r.Method, Path: path, Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization"),
		UserAgent: r.Header.Get("User-Agent"), ContentType: r.Header.Get("Content-Type"), Body: string(body),
	})
	h := f.routes[r.Method+" "+path]
	f.mu.Unlock()
	if r.Header.Get("User-Agent") == "" {
		f.t.Errorf("%s %s without User-Agent", r.Method, path)
	}
	if path != lstEndpoint {
		if msg := f.checkSignature(r, body); msg != "" {
			f.t.Errorf("%s %s: %s", r.Method, path, msg)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	}
	if h == nil {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"not found"}`)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	h(w, r)
}

// checkSignature re-signs the request as received (URL, decoded query, form
// body) and compares the Authorization header.
func (f *fakeIBKR) checkSignature(r *http.Request, body []byte) string {
	hp, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return err.Error()
	}
	s := &signer{consumerKey: hp["oauth_consumer_key"], accessToken: hp["oauth_token"], realm: hp["realm"], key: f.lstKey}
	extra := valuesParams(nil, r.URL.Query())
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return err.Error()
		}
		extra = valuesParams(extra, form)
	}
	want := s.sign(r.Method, "http://"+r.Host+r.URL.Path, extra, hp["oauth_nonce"], hp["oauth_timestamp"])
	if want.header != r.Header.Get("Authorization") {
		return "signature does not match the request as received"
	}
	return ""
}

// parseAuthorization splits an OAuth header into decoded values.
func parseAuthorization(h string) (map[string]string, error) {
	rest, ok := strings.CutPrefix(h, "OAuth ")
	if !ok {
		return nil, errString("no OAuth prefix")
	}
	out := map[string]string{}
	for pair := range strings.SplitSeq(rest, ", ") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			return nil, errString("bad pair " + pair)
		}
		dv, err := url.PathUnescape(v[1 : len(v)-1])
		if err != nil {
			return nil, err
		}
		out[k] = dv
	}
	return out, nil
}

type errString string

func (e errString) Error() string { return string(e) }

// fakeClock is a deterministic clock whose Sleep advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.sleeps = append(c.sleeps, d)
	return nil
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// repeatReader repeats b forever: each handshake attempt draws the same
// DH exponent, so the vector's server answer fits every attempt.
type repeatReader struct {
	b []byte
	i int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	for n := range p {
		p[n] = r.b[r.i%len(r.b)]
		r.i++
	}
	return len(p), nil
}

// vectorOptions are Options that reproduce lst_cases[0] against the fake,
// with a pacer on a fake clock so no test waits.
func vectorOptions(t *testing.T, f *fakeIBKR) (Options, *fakeClock) {
	t.Helper()
	v := f.v
	a, err := hex.DecodeString(v.LSTCases[0].Request.DHRandomHex)
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{now: time.Unix(1714489460, 0)}
	return Options{
		BaseURL:    f.baseURL(),
		HTTPClient: f.srv.Client(),
		Now:        clk.Now,
		Nonce:      func() string { return "0000000000000000000000005eed0000" },
		Rand:       &repeatReader{b: a},
		Pacer:      NewPacerWith(PacerConfig{Now: clk.Now, Sleep: clk.Sleep}),
	}, clk
}

// vectorSession is a Session signed with the vectors' LST against the fake.
func vectorSession(t *testing.T, f *fakeIBKR) (*Session, *fakeClock) {
	t.Helper()
	o, clk := vectorOptions(t, f)
	c := f.v.Credentials
	s, err := ResumeSession(o, c.ConsumerKey, c.AccessToken, RealmLimitedPOA,
		LiveSessionToken{Value: f.v.LSTCases[0].Derived.LST, Expires: time.UnixMilli(f.v.LSTCases[0].Server.ExpirationMS)})
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}
