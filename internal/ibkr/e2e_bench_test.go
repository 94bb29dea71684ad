package ibkr_test

import (
	"net/http/httptest"
	"testing"

	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// BenchmarkHandshakeE2E is whole live session token handshakes against the
// simulator over loopback HTTP: the client's RSA signature and DH, the
// server's verification and DH, and the client's validation. The figure
// that matters is handshakes/s — what a cold start of many tenants costs.
func BenchmarkHandshakeE2E(b *testing.B) {
	sim := ibkrsim.New(ibkrsim.Config{})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	cons, in := vectorConsumer(b)
	if err := sim.AddConsumer(cons); err != nil {
		b.Fatal(err)
	}
	creds, err := ibkr.ParseCredentials(in)
	if err != nil {
		b.Fatal(err)
	}
	opts := ibkr.Options{BaseURL: srv.URL + "/v1/api", HTTPClient: srv.Client()}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := ibkr.Handshake(b.Context(), opts, creds); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
}
