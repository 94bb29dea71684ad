package ibkrsim_test

import (
	"crypto/rsa"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/clocktest"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ibkrsim/simtest"
)

// testKeys are the vectors' two generated test keys, shared by every
// registered consumer so suites never wait for RSA key generation.
type testKeys struct {
	sig, enc *rsa.PrivateKey
}

var keysOnce = sync.OnceValue(func() testKeys {
	v := loadVectors(nopTB{})
	return testKeys{
		sig: parsePrivateKey(nopTB{}, v.Credentials.SignaturePrivateKeyPEM),
		enc: parsePrivateKey(nopTB{}, v.Credentials.EncryptionPrivateKeyPEM),
	}
})

// nopTB lets the key loader run outside a test; it panics on failure, which
// only a broken testdata file can cause.
type nopTB struct{ testing.TB }

func (nopTB) Helper()                   {}
func (nopTB) Fatal(args ...any)         { panic(fmt.Sprint(args...)) }
func (nopTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

// fixture is a simulator over real HTTP with an injected clock.
type fixture struct {
	t     *testing.T
	sim   *ibkrsim.Server
	srv   *httptest.Server
	clock *clocktest.Clock
}

func newFixture(t *testing.T, cfg ibkrsim.Config) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: clocktest.New(time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC))}
	if cfg.Clock == nil {
		cfg.Clock = f.clock.Now
	}
	f.sim = ibkrsim.New(cfg)
	f.srv = httptest.NewServer(f.sim)
	t.Cleanup(f.srv.Close)
	return f
}

// register adds a consumer for acct (fresh when empty) and returns a client
// that holds a live session token.
func (f *fixture) register(acct string) *client {
	f.t.Helper()
	k := keysOnce()
	c, _, err := ibkrsim.Register(ibkrsim.RegisterOptions{AccountID: acct, SignatureKey: k.sig, EncryptionKey: k.enc})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.sim.AddConsumer(c); err != nil {
		f.t.Fatal(err)
	}
	cl := newClient(f.t, f.srv, c, k.sig, f.clock.Now)
	cl.account = c.Accounts[0].ID
	if _, err := cl.handshake(); err != nil {
		f.t.Fatal(err)
	}
	return cl
}

// ready registers a consumer and opens its brokerage session with accounts
// read, so order calls work.
func (f *fixture) ready(acct string) *client {
	f.t.Helper()
	c := f.register(acct)
	mustStatus(f.t, "ssodh/init", c.call(http.MethodPost, "/iserver/auth/ssodh/init", map[string]bool{"publish": true, "compete": true}), http.StatusOK)
	mustStatus(f.t, "accounts", c.call(http.MethodGet, "/iserver/accounts", nil), http.StatusOK)
	return c
}

// control calls the simulator's control API.
func (f *fixture) control(method, path string, body any) resp {
	f.t.Helper()
	res, b := simtest.Control(f.t, f.srv, method, path, body)
	return resp{Status: res.StatusCode, Body: b, Header: res.Header}
}

// fault injects a fault through the control API.
func (f *fixture) fault(kind, path string, value any, count int) {
	f.t.Helper()
	body := map[string]any{"kind": kind, "path": path, "count": count}
	if value != nil {
		body["value"] = value
	}
	mustStatus(f.t, "POST /sim/faults", f.control(http.MethodPost, "/sim/faults", body), http.StatusCreated)
}

// simOrders reads GET /sim/orders.
func (f *fixture) simOrders() []ibkrsim.SimOrder {
	f.t.Helper()
	r := f.control(http.MethodGet, "/sim/orders", nil)
	mustStatus(f.t, "GET /sim/orders", r, http.StatusOK)
	var out []ibkrsim.SimOrder
	r.json(f.t, &out)
	return out
}

// orderBody is one order in IBKR's envelope.
func orderBody(acct string, conid int, coid, typ, side string, qty float64, tif string, price float64) map[string]any {
	o := map[string]any{"acctId": acct, "conid": conid, "cOID": coid, "orderType": typ, "side": side, "quantity": qty, "tif": tif}
	if price > 0 {
		o["price"] = price
	}
	return map[string]any{"orders": []any{o}}
}

// placeAnswer is one element of a placement or reply answer.
type placeAnswer struct {
	OrderID     string   `json:"order_id"`
	OrderStatus string   `json:"order_status"`
	Encrypt     string   `json:"encrypt_message"`
	ID          string   `json:"id"`
	Message     []string `json:"message"`
	MessageIDs  []string `json:"messageIds"`
}

// place sends an order and confirms every question; it returns the order id
// and the message ids asked.
func (c *client) place(body any) (string, []string) {
	c.t.Helper()
	r := c.call(http.MethodPost, "/iserver/account/"+c.account+"/orders", body)
	var asked []string
	for range 10 {
		mustStatus(c.t, "place/reply", r, http.StatusOK)
		var ans []placeAnswer
		r.json(c.t, &ans)
		if len(ans) != 1 {
			c.t.Fatalf("answer %s", r.Body)
		}
		if ans[0].OrderID != "" {
			return ans[0].OrderID, asked
		}
		asked = append(asked, ans[0].MessageIDs...)
		r = c.call(http.MethodPost, "/iserver/reply/"+ans[0].ID, map[string]bool{"confirmed": true})
	}
	c.t.Fatal("reply chain did not end")
	return "", nil
}
