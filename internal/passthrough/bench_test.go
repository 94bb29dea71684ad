package passthrough_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/passthrough"
)

// oneSession hands out one ready session: the benchmark measures the
// proxy, not IBKR's pacing (the cache's pacer allows 10 requests a second,
// so its own cost is measured apart, in BenchmarkCacheDo).
type oneSession struct {
	s    *ibkr.Session
	conn broker.Conn
}

func (o oneSession) Do(ctx context.Context, _ string, fn func(context.Context, *ibkr.Session, broker.Conn) error) error {
	return fn(ctx, o.s, o.conn)
}

func (o oneSession) Current(string, *ibkr.Session) bool { return true }

// readySession handshakes as the tenant with an unlimited pacer and opens
// its brokerage session.
func readySession(b *testing.B, e *env, tn tenant) *ibkr.Session {
	raw, _ := json.Marshal(tn.creds)
	var in ibkr.CredentialsInput
	if err := json.Unmarshal(raw, &in); err != nil {
		b.Fatal(err)
	}
	creds, err := ibkr.ParseCredentials(in)
	if err != nil {
		b.Fatal(err)
	}
	opts := ibkr.Options{BaseURL: e.sim.baseURL(), HTTPClient: e.sim.srv.Client(),
		Pacer: ibkr.NewPacerWith(ibkr.PacerConfig{Limits: ibkr.PacerLimits{Global: rate.Inf}})}
	ctx := context.Background()
	s, err := ibkr.Handshake(ctx, opts, creds)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.InitBrokerage(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Accounts(ctx); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkPassthroughOverhead compares, request by request, a signed call
// straight to the simulator with the same call through the proxy over
// HTTP, and reports the medians and the added latency (p50 proxied - p50
// direct).
func BenchmarkPassthroughOverhead(b *testing.B) {
	e := newEnv(b, envOptions{sim: ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}}})
	tn := e.tenant("DU6000001")
	s := readySession(b, e, tn)
	proxy, err := passthrough.New(passthrough.Config{Sessions: oneSession{s, broker.Conn{UserID: tn.id, AccountID: tn.account}}})
	if err != nil {
		b.Fatal(err)
	}
	e.proxy = proxy // the front serves this proxy from now on
	front := e.front.URL + "/u/" + tn.id + "/ibkr/iserver/marketdata/snapshot?conids=265598&fields=31,84,86"
	hc := e.front.Client()
	ctx := context.Background()
	// timed measures one request, which send makes, until its body is read.
	timed := func(name string, send func() (*http.Response, error)) time.Duration {
		t0 := time.Now()
		resp, err := send()
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d", name, resp.StatusCode)
		}
		return time.Since(t0)
	}
	direct := func() time.Duration {
		return timed("direct", func() (*http.Response, error) {
			return s.Forward(ctx, http.MethodGet, "/iserver/marketdata/snapshot", "conids=265598&fields=31,84,86", http.Header{"Accept": {"application/json"}})
		})
	}
	proxied := func() time.Duration {
		return timed("proxied", func() (*http.Response, error) { return hc.Get(front) })
	}
	for range 50 { // warm connections
		direct()
		proxied()
	}
	var d, p []time.Duration
	b.ResetTimer()
	for range b.N {
		d = append(d, direct())
		p = append(p, proxied())
	}
	b.StopTimer()
	med := func(xs []time.Duration) float64 {
		slices.Sort(xs)
		return float64(xs[len(xs)/2].Microseconds())
	}
	md, mp := med(d), med(p)
	b.ReportMetric(md, "p50-direct-µs")
	b.ReportMetric(mp, "p50-proxied-µs")
	b.ReportMetric(mp-md, "p50-added-µs")
}

// BenchmarkCacheDo is what the broker session cache adds to each proxied
// request on a warm tenant: finding the session and leasing its pacer.
func BenchmarkCacheDo(b *testing.B) {
	e := newEnv(b, envOptions{})
	tn := e.tenant("DU6100001")
	e.warm(tn)
	cache := e.svc.Cache()
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if err := cache.Do(ctx, tn.id, func(context.Context, *ibkr.Session, broker.Conn) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
