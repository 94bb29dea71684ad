// Command simload is a load tool for the IBKR simulator: it registers
// consumers with a running `ordertune sim --no-pacing`, gives each a live
// session token through the product's own client, and then sends signed
// requests from many goroutines over real TCP for a bounded time, reporting
// throughput and latency percentiles. It only ever targets the loopback
// address it is given.
//
//	.bin/ordertune sim --addr 127.0.0.1:5005 --no-pacing &
//	go run ./scripts/simload --sim http://127.0.0.1:5005 --consumers 50 --workers 32 --duration 10s
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
)

func main() {
	sim := flag.String("sim", "http://127.0.0.1:5005", "the running simulator (loopback only)")
	consumers := flag.Int("consumers", 50, "simulated IBKR consumers (tenants)")
	workers := flag.Int("workers", 32, "concurrent request loops")
	duration := flag.Duration("duration", 10*time.Second, "how long to send (at most 5 minutes)")
	flag.Parse()
	if err := run(*sim, *consumers, *workers, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "simload:", err)
		os.Exit(1)
	}
}

func run(sim string, consumers, workers int, duration time.Duration) error {
	u, err := url.Parse(sim)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return errors.New("--sim must be a loopback address: this tool sends load only to this machine")
	}
	duration = min(duration, 5*time.Minute)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 30 * time.Second}
	ctx := context.Background()

	// RSA key generation is slow; the consumers share one key pair, which
	// changes nothing for the simulator's per-consumer work.
	sigKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	encKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	unlimited := ibkr.PacerLimits{Global: rate.Inf, LiveOrders: rate.Inf, Trades: rate.Inf, Tickle: rate.Inf, PortfolioAccounts: rate.Inf}
	sessions := make([]*ibkr.Session, consumers)
	start := time.Now()
	for i := range sessions {
		cons, user, err := ibkrsim.Register(ibkrsim.RegisterOptions{SignatureKey: sigKey, EncryptionKey: encKey})
		if err != nil {
			return err
		}
		if err := ibkrsim.PostConsumer(ctx, client, sim, cons); err != nil {
			return fmt.Errorf("register consumer: %w", err)
		}
		var in ibkr.CredentialsInput
		b, _ := json.Marshal(user)
		json.Unmarshal(b, &in)
		creds, err := ibkr.ParseCredentials(in)
		if err != nil {
			return err
		}
		opts := ibkr.Options{BaseURL: sim + ibkrsim.APIPrefix, HTTPClient: client, Pacer: ibkr.NewPacerWith(ibkr.PacerConfig{Limits: unlimited})}
		if sessions[i], err = ibkr.Handshake(ctx, opts, creds); err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
	}
	fmt.Printf("%d consumers registered with a live session token in %v\n", consumers, time.Since(start).Round(time.Millisecond))

	var (
		next     atomic.Int64
		failures atomic.Int64
		mu       sync.Mutex
		lat      []time.Duration
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(duration)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) {
				s := sessions[int(next.Add(1))%consumers]
				t0 := time.Now()
				if _, err := s.Stocks(ctx, "AAPL", "MSFT"); err != nil {
					if failures.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, "first failure:", err)
					}
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(math.Ceil(p*float64(len(lat))))-1]
	}
	fmt.Printf("signed GET /trsrv/stocks: %d ok, %d failed in %v: %.0f req/s; p50 %v, p99 %v, max %v\n",
		len(lat), failures.Load(), duration, float64(len(lat))/duration.Seconds(),
		pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	if failures.Load() > 0 {
		return fmt.Errorf("%d requests failed", failures.Load())
	}
	return nil
}
