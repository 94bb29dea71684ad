package ibkrsim_test

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// TestManyConsumersConcurrently drives 200 consumers at once through the whole
// order path and checks that each sees exactly its own orders.
func TestManyConsumersConcurrently(t *testing.T) {
	const n = 200
	f := newFixture(t, ibkrsim.Config{})
	k := keysOnce()
	clients := make([]*client, n)
	for i := range n {
		c, _, err := ibkrsim.Register(ibkrsim.RegisterOptions{AccountID: fmt.Sprintf("DU%07d", 3000000+i), SignatureKey: k.sig, EncryptionKey: k.enc})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.sim.AddConsumer(c); err != nil {
			t.Fatal(err)
		}
		clients[i] = newClient(t, f.srv, c, k.sig, f.clock.Now)
		clients[i].account = c.Accounts[0].ID
	}
	tickers := []string{"AAPL", "MSFT", "NVDA", "AMZN", "META"}
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- drive(c, i, tickers[i%len(tickers)])
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// The control API saw every order once, on the right account.
	byAccount := map[string][]string{}
	for _, o := range f.simOrders() {
		byAccount[o.Account] = append(byAccount[o.Account], o.COID)
	}
	for i, c := range clients {
		want := []string{fmt.Sprintf("c%d-1", i), fmt.Sprintf("c%d-2", i)}
		got := byAccount[c.account]
		sort.Strings(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s orders (-want +got):\n%s", c.account, diff)
		}
	}
}

// drive runs one consumer's session without calling t.Fatal off the test
// goroutine: it reports the first failure as an error.
func drive(c *client, i int, ticker string) error {
	check := func(what string, r resp, want int) error {
		if r.Status != want {
			return fmt.Errorf("consumer %d %s: status %d: %s", i, what, r.Status, r.Body)
		}
		return nil
	}
	if _, err := c.handshake(); err != nil {
		return fmt.Errorf("consumer %d: %w", i, err)
	}
	steps := []struct {
		what, method, path string
		body               any
	}{
		{"init", http.MethodPost, "/iserver/auth/ssodh/init", map[string]bool{"publish": true, "compete": true}},
		{"accounts", http.MethodGet, "/iserver/accounts", nil},
		{"stocks", http.MethodGet, "/trsrv/stocks?symbols=" + ticker, nil},
	}
	for _, s := range steps {
		if err := check(s.what, c.callQuiet(s.method, s.path, s.body), http.StatusOK); err != nil {
			return err
		}
	}
	var ids []string
	for j := 1; j <= 2; j++ {
		r := c.callQuiet(http.MethodPost, "/iserver/account/"+c.account+"/orders", orderBody(c.account, 265598, fmt.Sprintf("c%d-%d", i, j), "MKT", "BUY", float64(i+1), "DAY", 0))
		for range 3 {
			if err := check("place", r, http.StatusOK); err != nil {
				return err
			}
			var ans []placeAnswer
			if err := r.decode(&ans); err != nil || len(ans) != 1 {
				return fmt.Errorf("consumer %d place answer %s", i, r.Body)
			}
			if ans[0].OrderID != "" {
				ids = append(ids, ans[0].OrderID)
				break
			}
			r = c.callQuiet(http.MethodPost, "/iserver/reply/"+ans[0].ID, map[string]bool{"confirmed": true})
		}
	}
	if len(ids) != 2 {
		return fmt.Errorf("consumer %d placed %d orders", i, len(ids))
	}
	r := c.callQuiet(http.MethodGet, "/iserver/account/orders", nil)
	if err := check("live orders", r, http.StatusOK); err != nil {
		return err
	}
	var live struct {
		Orders []struct {
			Acct     string  `json:"acct"`
			OrderRef string  `json:"order_ref"`
			Total    float64 `json:"totalSize"`
		} `json:"orders"`
	}
	if err := r.decode(&live); err != nil {
		return err
	}
	if len(live.Orders) != 2 {
		return fmt.Errorf("consumer %d sees %d orders: %s", i, len(live.Orders), r.Body)
	}
	for _, o := range live.Orders {
		if o.Acct != c.account || o.Total != float64(i+1) {
			return fmt.Errorf("consumer %d sees a foreign order %+v", i, o)
		}
	}
	// Another consumer's order id is not found, never shown.
	foreign := fmt.Sprint(mustAtoi(ids[0]) + 2)
	if r := c.callQuiet(http.MethodGet, "/iserver/account/order/status/"+foreign, nil); r.Status == http.StatusOK {
		var st struct {
			Account string `json:"account"`
		}
		if err := r.decode(&st); err == nil && st.Account != c.account {
			return fmt.Errorf("consumer %d read order %s of %s", i, foreign, st.Account)
		}
	}
	return check("status", c.callQuiet(http.MethodGet, "/iserver/account/order/status/"+ids[1], nil), http.StatusOK)
}

func mustAtoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}
