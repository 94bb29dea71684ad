package ibkr

import (
	"bytes"
	"testing"
)

// BenchmarkSignRequest signs one API request the way Session.do does: a
// fresh random nonce, the decoded query folded in, the header rendered.
// Target: ≤ 5 µs and ≤ 4 KiB per request.
func BenchmarkSignRequest(b *testing.B) {
	benchSign(b, "GET", "https://api.ibkr.com/v1/api/iserver/secdef/search", []param{{"symbol", "AAPL"}, {"secType", "STK"}})
}

// BenchmarkSignRequestNoQuery signs a POST without query parameters (the
// order path).
func BenchmarkSignRequestNoQuery(b *testing.B) {
	benchSign(b, "POST", "https://api.ibkr.com/v1/api/iserver/account/DU1234567/orders", nil)
}

// benchSign signs method base with the query parameters extra (copied per
// request, as Session.do builds them afresh) with the vectors' signer.
func benchSign(b *testing.B, method, base string, extra []param) {
	v := loadVectors(b)
	s := vectorSigner(b, v)
	b.ReportAllocs()
	for b.Loop() {
		var ps []param
		if extra != nil {
			ps = append([]param(nil), extra...)
		}
		sg := s.sign(method, base, ps, randomNonce(), "1714489567")
		if len(sg.header) == 0 {
			b.Fatal("empty header")
		}
	}
}

// BenchmarkHandshakeClientCPU is the client's share of one LST handshake,
// without the network or the server: draw a, compute A, sign the base
// string with RSA-SHA256, then parse the answer, compute K and the LST and
// validate it.
func BenchmarkHandshakeClientCPU(b *testing.B) {
	v := loadVectors(b)
	c := vectorCredentials(b, v)
	lc := v.LSTCases[0]
	a := mustHexInt(b, lc.Request.DHRandomHex).FillBytes(make([]byte, dhExponentBytes))
	body := []byte(lc.Server.ResponseBody)
	b.ReportAllocs()
	for b.Loop() {
		exp, err := newDHExponent(bytes.NewReader(a))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := buildLSTRequest(c, lc.Request.URL, lc.Request.Nonce, lc.Request.Timestamp, exp); err != nil {
			b.Fatal(err)
		}
		r, err := parseLSTResponse(body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := finishLST(r, exp, c); err != nil {
			b.Fatal(err)
		}
	}
}
