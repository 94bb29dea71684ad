package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/seal"
)

// FuzzParseForward: the forward proof header is outside input (anyone can
// send it); parsing never panics, and what it accepts renders back to the
// same header.
func FuzzParseForward(f *testing.F) {
	ring := seal.RandomRing("k1")
	p := forwardProof{from: "host-0a1b2c", ts: 1764646800, clientIP: "203.0.113.7"}
	p.keyID, p.mac = ring.MAC(forwardMACLabel, forwardMessage(p, "POST", "/api/v1/signals/x/confirm"))
	f.Add(formatForward(p))
	f.Add("v1 key=k1 from=a ts=1 ip=::1 mac=" + string(bytes.Repeat([]byte("A"), 43)))
	f.Add("v1 key= from=a ts=1 ip=1.2.3.4 mac=x")
	f.Add("v2 key=k1 from=a ts=1 ip=1.2.3.4 mac=x")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		got, ok := parseForward(v)
		if !ok {
			return
		}
		again, ok := parseForward(formatForward(got))
		if !ok || again.keyID != got.keyID || again.from != got.from || again.ts != got.ts ||
			again.clientIP != got.clientIP || !bytes.Equal(again.mac, got.mac) {
			t.Fatalf("%q parsed to %+v, which does not render back", v, got)
		}
	})
}

func TestForwardProofVerifies(t *testing.T) {
	ring := seal.RandomRing("k1")
	p := forwardProof{from: "r1", ts: time.Now().Unix(), clientIP: "198.51.100.2"}
	p.keyID, p.mac = ring.MAC(forwardMACLabel, forwardMessage(p, "POST", "/api/v1/signals/s/confirm"))
	got, ok := parseForward(formatForward(p))
	if !ok {
		t.Fatalf("own header %q does not parse", formatForward(p))
	}
	for _, tc := range []struct {
		name, method, path string
		ring               *seal.Ring
		want               bool
	}{
		{"as signed", "POST", "/api/v1/signals/s/confirm", ring, true},
		{"another path", "POST", "/api/v1/signals/t/confirm", ring, false},
		{"another method", "GET", "/api/v1/signals/s/confirm", ring, false},
		{"another deployment's keys", "POST", "/api/v1/signals/s/confirm", seal.RandomRing("k1"), false},
	} {
		if ok := tc.ring.VerifyMAC(got.keyID, forwardMACLabel, forwardMessage(got, tc.method, tc.path), got.mac); ok != tc.want {
			t.Errorf("%s: verified %v, want %v", tc.name, ok, tc.want)
		}
	}
}

// BenchmarkForwardHop is what a forward adds to a request: one reverse
// proxy hop over loopback with the proof signed, the way routeTenant
// relays to the owner (compare BenchmarkDirect; scripts/BENCHMARKS.md).
func BenchmarkForwardHop(b *testing.B) {
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"x","status":"submitted"}`)
	}))
	defer owner.Close()
	ring := seal.RandomRing("k1")
	target, _ := url.Parse(owner.URL)
	rp := &httputil.ReverseProxy{Transport: forwardTransport, Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		p := forwardProof{from: "r1", ts: time.Now().Unix(), clientIP: "127.0.0.1"}
		p.keyID, p.mac = ring.MAC(forwardMACLabel, forwardMessage(p, r.Out.Method, r.Out.URL.Path))
		r.Out.Header.Set(forwardHeader, formatForward(p))
	}}
	front := httptest.NewServer(rp)
	defer front.Close()
	benchGet(b, front.URL+"/api/v1/signals/s/confirm")
}

// BenchmarkDirect is the same request sent straight to the owner.
func BenchmarkDirect(b *testing.B) {
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"x","status":"submitted"}`)
	}))
	defer owner.Close()
	benchGet(b, owner.URL+"/api/v1/signals/s/confirm")
}

func benchGet(b *testing.B, u string) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for b.Loop() {
		resp, err := c.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
