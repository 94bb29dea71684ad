package ibkrsim_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// TestProtocolPitfalls covers PROTOCOL.md §8 items the vector sweeps do not.
func TestProtocolPitfalls(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}})

	t.Run("millisecond timestamps", func(t *testing.T) {
		c := f.register("")
		c.millis = true
		if status, _ := c.handshake(); status != http.StatusUnauthorized {
			t.Errorf("LST with ms timestamp: status %d, want 401", status)
		}
		c.millis = false
		if _, err := c.handshake(); err != nil {
			t.Fatal(err)
		}
		c.millis = true
		mustStatus(t, "signed request with ms timestamp", c.call(http.MethodPost, "/tickle", nil), http.StatusUnauthorized)
	})

	t.Run("challenge with a leading zero is verified as sent", func(t *testing.T) {
		c := f.register("")
		c.challengePrefix = "0"
		if _, err := c.handshake(); err != nil {
			t.Fatalf("leading-zero challenge: %v", err)
		}
		mustStatus(t, "with that token", c.call(http.MethodPost, "/tickle", nil), http.StatusOK)
	})

	t.Run("double-encoded comma", func(t *testing.T) {
		c := f.register("")
		c.mu.Lock()
		lst := c.lst
		c.mu.Unlock()
		path := "/v1/api/trsrv/stocks?symbols=AAPL,MSFT"
		bad := c.signHMAC(lst, http.MethodGet, "/trsrv/stocks", url.Values{"symbols": {"AAPL%2CMSFT"}})
		if status, body := sendRaw(t, f.srv.URL, http.MethodGet, path, "", bad, "", ""); status != http.StatusUnauthorized {
			t.Errorf("%%252C signature: status %d, want 401: %s", status, body)
		}
		good := c.signHMAC(lst, http.MethodGet, "/trsrv/stocks", url.Values{"symbols": {"AAPL,MSFT"}})
		if status, body := sendRaw(t, f.srv.URL, http.MethodGet, path, "", good, "", ""); status != http.StatusOK {
			t.Errorf("%%2C signature: status %d: %s", status, body)
		}
	})

	t.Run("form bodies are signed", func(t *testing.T) {
		c := f.register("")
		c.mu.Lock()
		lst := c.lst
		c.mu.Unlock()
		const form = "a=1&b=x%2Cy"
		signed := c.signHMAC(lst, http.MethodPost, "/tickle", url.Values{"a": {"1"}, "b": {"x,y"}})
		if status, body := sendRaw(t, f.srv.URL, http.MethodPost, "/v1/api/tickle", "", signed, "application/x-www-form-urlencoded", form); status != http.StatusOK {
			t.Errorf("form folded in: status %d: %s", status, body)
		}
		unsigned := c.signHMAC(lst, http.MethodPost, "/tickle", nil)
		if status, _ := sendRaw(t, f.srv.URL, http.MethodPost, "/v1/api/tickle", "", unsigned, "application/x-www-form-urlencoded", form); status != http.StatusUnauthorized {
			t.Errorf("form left out of the signature: status %d, want 401", status)
		}
		// A JSON body is never signed.
		if status, body := sendRaw(t, f.srv.URL, http.MethodPost, "/v1/api/tickle", "", c.signHMAC(lst, http.MethodPost, "/tickle", nil), "application/json", `{"a":1}`); status != http.StatusOK {
			t.Errorf("JSON body: status %d: %s", status, body)
		}
	})

	t.Run("missing User-Agent", func(t *testing.T) {
		c := f.register("")
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/v1/api/tickle", nil)
		req.Header.Set("User-Agent", "")
		req.Header.Set("Authorization", c.signHMAC(c.lst, http.MethodPost, "/tickle", nil))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", res.StatusCode)
		}
	})

	t.Run("cOID is unique for 24 hours", func(t *testing.T) {
		g := newFixture(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}, LSTTTL: 72 * time.Hour, SessionIdleTimeout: 72 * time.Hour})
		c := g.ready("DU5000001")
		c.place(orderBody("DU5000001", 265598, "day-1", "MKT", "BUY", 1, "OPG", 0))
		g.clock.Advance(23 * time.Hour)
		mustStatus(t, "same cOID within 24 h", c.call(http.MethodPost, "/iserver/account/DU5000001/orders", orderBody("DU5000001", 265598, "day-1", "MKT", "BUY", 1, "OPG", 0)), http.StatusBadRequest)
		g.clock.Advance(time.Hour)
		c.place(orderBody("DU5000001", 265598, "day-1", "MKT", "BUY", 1, "OPG", 0))
	})
}
