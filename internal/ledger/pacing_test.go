package ledger_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ibkrsim/simtest"
	"github.com/ordertune/ordertune/internal/ledger"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

// counting counts the simulator's 429 answers.
type counting struct {
	next     http.RoundTripper
	requests atomic.Int64
	limited  atomic.Int64

	mu    sync.Mutex
	paths map[string]int // of the 429 answers
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	c.requests.Add(1)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		c.limited.Add(1)
		c.mu.Lock()
		c.paths[r.URL.Path]++
		c.mu.Unlock()
	}
	return resp, err
}

// Importing the executions of 500 tenants, twice each and all at once,
// keeps to IBKR's per-session limits (the simulator enforces them, with
// IBKR's 5 s between two executions lists and its penalty box): not one
// 429.
func TestImportPacing500Tenants(t *testing.T) {
	const tenants = 500
	pool := pgtest.Pool(t)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	count := &counting{next: tr, paths: map[string]int{}}
	// IBKR's limits on both sides: the simulator's defaults, the client's.
	env := tradetest.NewEnv(t, ibkrsim.Config{PortfolioAccountsFirst: true}, tradetest.SimBrokerOptions{HTTPClient: &http.Client{Transport: count}})
	ts, err := trading.New(trading.Config{Pool: pool, Broker: env.Broker})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := ledger.New(ledger.Config{Pool: pool, Broker: env.Broker, RecordFills: ts.RecordFills})
	if err != nil {
		t.Fatal(err)
	}
	// Connect the tenants in parallel: parsing credentials checks the DH
	// prime, which takes a while.
	keys := simtest.MustKeys(t)
	users := make([]string, tenants)
	var setup errgroup.Group
	setup.SetLimit(4)
	for i := range users {
		users[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		setup.Go(func() error {
			c, u, err := ibkrsim.Register(ibkrsim.RegisterOptions{SignatureKey: keys.Signature, EncryptionKey: keys.Encryption})
			if err != nil {
				return err
			}
			if err := env.Sim.AddConsumer(c); err != nil {
				return err
			}
			return env.Broker.Link(users[i], u)
		})
	}
	if err := setup.Wait(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	var g errgroup.Group
	g.SetLimit(64)
	var mu sync.Mutex
	imports := 0
	for round := 0; round < 2; round++ {
		for _, u := range users {
			g.Go(func() error {
				// The users exist only at the simulator: nothing is stored.
				if _, err := ls.Import(ctx, u); err != nil {
					return err
				}
				mu.Lock()
				imports++
				mu.Unlock()
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := count.limited.Load(); n != 0 {
		t.Errorf("%d answers were 429 (of %d requests): %v", n, count.requests.Load(), count.paths)
	}
	if imports != 2*tenants {
		t.Errorf("%d imports, want %d", imports, 2*tenants)
	}
	t.Logf("%d imports, %d requests in %s", imports, count.requests.Load(), time.Since(start).Round(time.Millisecond))
}
