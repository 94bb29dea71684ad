package ibkrsim_test

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

func TestPacing(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{PerSecond: 10, Burst: 10, PenaltyBox: 30 * time.Second}})
	c := f.ready("") // init + accounts spend 2 of the burst

	for range 8 {
		mustStatus(t, "within burst", c.call(http.MethodGet, "/trsrv/stocks?symbols=AAPL", nil), http.StatusOK)
	}
	r := c.call(http.MethodGet, "/trsrv/stocks?symbols=AAPL", nil)
	mustStatus(t, "over the limit", r, http.StatusTooManyRequests)
	if got := r.Header.Get("Retry-After"); got != "30" {
		t.Errorf("Retry-After %q, want 30 (the penalty box)", got)
	}
	f.clock.Advance(10 * time.Second)
	r = c.call(http.MethodPost, "/tickle", nil)
	mustStatus(t, "in the penalty box", r, http.StatusTooManyRequests)
	if got := r.Header.Get("Retry-After"); got != "20" {
		t.Errorf("Retry-After %q in the box, want 20", got)
	}
	f.clock.Advance(21 * time.Second)
	mustStatus(t, "after the box", c.call(http.MethodGet, "/trsrv/stocks?symbols=AAPL", nil), http.StatusOK)

	// Another consumer was never limited.
	other := f.ready("")
	mustStatus(t, "other consumer", other.call(http.MethodGet, "/trsrv/stocks?symbols=AAPL", nil), http.StatusOK)

	// Per-endpoint limits: live orders and trades 1 per 5 s, tickle 1/s.
	for _, tc := range []struct {
		method, path string
		every        time.Duration
		retry        string
	}{
		{http.MethodGet, "/iserver/account/orders", 5 * time.Second, "5"},
		{http.MethodGet, "/iserver/account/trades", 5 * time.Second, "5"},
		{http.MethodPost, "/tickle", time.Second, "1"},
	} {
		f.clock.Advance(10 * time.Second)
		mustStatus(t, tc.path, c.call(tc.method, tc.path, nil), http.StatusOK)
		r := c.call(tc.method, tc.path, nil)
		mustStatus(t, tc.path+" again", r, http.StatusTooManyRequests)
		if got := r.Header.Get("Retry-After"); got != tc.retry {
			t.Errorf("%s Retry-After %q, want %s", tc.path, got, tc.retry)
		}
		f.clock.Advance(tc.every)
		mustStatus(t, tc.path+" after the interval", c.call(tc.method, tc.path, nil), http.StatusOK)
	}
}

func TestFaultStatusAndLatency(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}})
	c := f.ready("")

	f.fault("status", "/v1/api/iserver/accounts", 503, 2)
	for range 2 {
		r := c.call(http.MethodGet, "/iserver/accounts", nil)
		mustStatus(t, "status fault", r, http.StatusServiceUnavailable)
		if r.Header.Get("Retry-After") != "1" || string(r.Body) != `{"error":"Service Unavailable","statusCode":503}` {
			t.Errorf("status fault answer: %v %s", r.Header, r.Body)
		}
	}
	mustStatus(t, "after the count", c.call(http.MethodGet, "/iserver/accounts", nil), http.StatusOK)
	mustStatus(t, "other path unaffected", c.call(http.MethodPost, "/tickle", nil), http.StatusOK)

	// A latency longer than the client's deadline: the client times out, the
	// fault is spent, the next call answers.
	f.fault("latency", "/tickle", "1h", 1)
	c.http = &http.Client{Timeout: 200 * time.Millisecond}
	if err := c.tryCall(http.MethodPost, "/tickle"); !isTimeout(err) {
		t.Fatalf("latency fault: err %v, want a timeout", err)
	}
	if err := c.tryCall(http.MethodPost, "/tickle"); err != nil {
		t.Fatalf("after latency fault: %v", err)
	}

	// Faults are cleared by DELETE /sim/faults.
	f.fault("status", "", "500", 0)
	mustStatus(t, "unlimited status fault", c.call(http.MethodPost, "/tickle", nil), http.StatusInternalServerError)
	mustStatus(t, "clear", f.control(http.MethodDelete, "/sim/faults", nil), http.StatusNoContent)
	mustStatus(t, "after clear", c.call(http.MethodPost, "/tickle", nil), http.StatusOK)

	for _, bad := range []map[string]any{
		{"kind": "meteor"},
		{"kind": "status", "value": 42},
		{"kind": "latency"},
		{"kind": "status", "value": 500, "count": -1},
	} {
		if r := f.control(http.MethodPost, "/sim/faults", bad); r.Status != http.StatusUnprocessableEntity {
			t.Errorf("fault %v: status %d, want 422", bad, r.Status)
		}
	}
}

// tryCall sends a signed request and returns the transport error, if any.
func (c *client) tryCall(method, path string) error {
	c.mu.Lock()
	lst := c.lst
	c.mu.Unlock()
	req, _ := http.NewRequest(method, c.base+"/v1/api"+path, nil)
	req.Header.Set("User-Agent", "ibkrsim-test/1")
	req.Header.Set("Authorization", c.signHMAC(lst, method, path, url.Values{}))
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	return nil
}

func isTimeout(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue) && ue.Timeout()
}

func TestFaultTimeoutAfterAccept(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value any
		check func(error) bool
	}{
		{"dropped", nil, func(err error) bool { return err != nil && !isTimeout(err) }},
		{"hangs past the deadline", "1h", isTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}, Questions: ibkrsim.Questions{NoFirstOrderQuestion: true}})
			c := f.ready("DU2000001")
			f.fault("timeout_after_accept", "/iserver/account/*/orders", tc.value, 1)
			c.http = &http.Client{Timeout: 300 * time.Millisecond}
			_, err := c.tryPlace(orderBody("DU2000001", 265598, "t-1", "MKT", "BUY", 1, "OPG", 0))
			if !tc.check(err) {
				t.Fatalf("placement error %v", err)
			}
			orders := f.simOrders()
			if len(orders) != 1 || orders[0].COID != "t-1" || orders[0].Status != "PreSubmitted" {
				t.Fatalf("the order was not recorded: %+v", orders)
			}
			// The order exists: re-sending the cOID is refused as a duplicate.
			c.http = f.srv.Client()
			r := c.call(http.MethodPost, "/iserver/account/DU2000001/orders", orderBody("DU2000001", 265598, "t-1", "MKT", "BUY", 1, "OPG", 0))
			if r.Status != http.StatusBadRequest || string(r.Body) != `{"error":"Order couldn't be submitted: Local order ID=t-1 is already registered."}` {
				t.Errorf("re-send: %d %s", r.Status, r.Body)
			}
		})
	}
}

// tryPlace posts an order and returns the transport error, if any.
func (c *client) tryPlace(body any) (int, error) {
	c.mu.Lock()
	lst := c.lst
	c.mu.Unlock()
	path := "/iserver/account/" + c.account + "/orders"
	req, _ := http.NewRequest(http.MethodPost, c.base+"/v1/api"+path, jsonReader(c.t, body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ibkrsim-test/1")
	req.Header.Set("Authorization", c.signHMAC(lst, http.MethodPost, path, url.Values{}))
	res, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

func TestFaultInvalidLST(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}})
	c := f.ready("")
	bystander := f.ready("")
	f.fault("invalid_lst", "/iserver/accounts", nil, 1)
	mustStatus(t, "struck request", c.call(http.MethodGet, "/iserver/accounts", nil), http.StatusUnauthorized)
	mustStatus(t, "token stays invalid", c.call(http.MethodPost, "/tickle", nil), http.StatusUnauthorized)
	mustStatus(t, "other consumer unaffected", bystander.call(http.MethodGet, "/iserver/accounts", nil), http.StatusOK)
	if _, err := c.handshake(); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, "after a new handshake", c.call(http.MethodPost, "/tickle", nil), http.StatusOK)
	// The new token needs a new brokerage session, as at IBKR.
	mustStatus(t, "bridge after new token", c.call(http.MethodGet, "/iserver/accounts", nil), http.StatusBadRequest)
}

func TestFaultScopedToConsumer(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}})
	a, b := f.ready(""), f.ready("")
	mustStatus(t, "fault", f.control(http.MethodPost, "/sim/faults", map[string]any{"kind": "status", "value": 502, "consumer_key": b.key}), http.StatusCreated)
	mustStatus(t, "other consumer", a.call(http.MethodPost, "/tickle", nil), http.StatusOK)
	mustStatus(t, "scoped consumer", b.call(http.MethodPost, "/tickle", nil), http.StatusBadGateway)
}
