package httpapi

import (
	"bytes"
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
