package ibkrsim_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// BenchmarkSignedRequests measures HMAC-signed GET /trsrv/stocks over real
// HTTP with keep-alive, one consumer per parallel worker, pacing off.
func BenchmarkSignedRequests(b *testing.B) {
	k := keysOnce()
	sim := ibkrsim.New(ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	const consumers = 16
	clients := make([]*client, consumers)
	for i := range clients {
		c, _, err := ibkrsim.Register(ibkrsim.RegisterOptions{SignatureKey: k.sig, EncryptionKey: k.enc})
		if err != nil {
			b.Fatal(err)
		}
		if err := sim.AddConsumer(c); err != nil {
			b.Fatal(err)
		}
		clients[i] = newClient(b, srv, c, k.sig, time.Now)
		clients[i].http = &http.Client{Transport: tr}
		if _, err := clients[i].handshake(); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	var failed atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c := clients[int(next.Add(1)-1)%consumers]
		for pb.Next() {
			if r := c.callQuiet(http.MethodGet, "/trsrv/stocks?symbols=AAPL,MSFT", nil); r.Status != http.StatusOK {
				failed.Add(1)
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}
