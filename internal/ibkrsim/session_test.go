package ibkrsim_test

import (
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

type authStatus struct {
	Authenticated bool `json:"authenticated"`
	Competing     bool `json:"competing"`
	Connected     bool `json:"connected"`
}

type tickle struct {
	Session    string `json:"session"`
	Collission bool   `json:"collission"`
	Iserver    struct {
		AuthStatus authStatus `json:"authStatus"`
	} `json:"iserver"`
}

const noBridge = `{"error":"Bad Request: no bridge","statusCode":400}`

func TestSessionLifecycle(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{SessionIdleTimeout: 6 * time.Minute, Pacing: ibkrsim.Pacing{Disabled: true}})
	c := f.register("DU7654321")

	r := c.call(http.MethodGet, "/iserver/accounts", nil)
	mustStatus(t, "accounts before init", r, http.StatusBadRequest)
	if diff := cmp.Diff(noBridge, string(r.Body)); diff != "" {
		t.Errorf("no bridge (-want +got):\n%s", diff)
	}
	// /trsrv and /tickle work on the OAuth session alone.
	mustStatus(t, "stocks before init", c.call(http.MethodGet, "/trsrv/stocks?symbols=AAPL", nil), http.StatusOK)
	var tk tickle
	r = c.call(http.MethodPost, "/tickle", nil)
	mustStatus(t, "tickle", r, http.StatusOK)
	r.json(t, &tk)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(tk.Session) {
		t.Errorf("tickle session %q, want 32 hex", tk.Session)
	}
	if diff := cmp.Diff(authStatus{}, tk.Iserver.AuthStatus); diff != "" {
		t.Errorf("tickle before init (-want +got):\n%s", diff)
	}

	healthy := authStatus{Authenticated: true, Connected: true}
	var st authStatus
	r = c.call(http.MethodPost, "/iserver/auth/ssodh/init", map[string]bool{"publish": true, "compete": true})
	mustStatus(t, "init", r, http.StatusOK)
	r.json(t, &st)
	if diff := cmp.Diff(healthy, st); diff != "" {
		t.Errorf("init (-want +got):\n%s", diff)
	}
	r = c.call(http.MethodPost, "/iserver/auth/status", nil)
	mustStatus(t, "status", r, http.StatusOK)
	r.json(t, &st)
	if diff := cmp.Diff(healthy, st); diff != "" {
		t.Errorf("auth status (-want +got):\n%s", diff)
	}

	order := orderBody(c.account, 265598, "s-1", "MKT", "BUY", 1, "DAY", 0)
	r = c.call(http.MethodPost, "/iserver/account/"+c.account+"/orders", order)
	mustStatus(t, "order before accounts", r, http.StatusBadRequest)
	if diff := cmp.Diff(`{"error":"Please query /accounts first"}`, string(r.Body)); diff != "" {
		t.Errorf("accounts first (-want +got):\n%s", diff)
	}
	var accts struct {
		Accounts        []string `json:"accounts"`
		SelectedAccount string   `json:"selectedAccount"`
		IsPaper         bool     `json:"isPaper"`
	}
	r = c.call(http.MethodGet, "/iserver/accounts", nil)
	mustStatus(t, "accounts", r, http.StatusOK)
	r.json(t, &accts)
	if diff := cmp.Diff([]string{"DU7654321"}, accts.Accounts); diff != "" || accts.SelectedAccount != "DU7654321" || !accts.IsPaper {
		t.Errorf("accounts %s", r.Body)
	}

	// A tickle within the idle timeout keeps the session.
	f.clock.Advance(5 * time.Minute)
	r = c.call(http.MethodPost, "/tickle", nil)
	r.json(t, &tk)
	if !tk.Iserver.AuthStatus.Authenticated {
		t.Fatalf("tickle within timeout: %s", r.Body)
	}
	// Silence past the timeout ends it: tickle answers 200 unauthenticated.
	f.clock.Advance(6*time.Minute + time.Second)
	r = c.call(http.MethodPost, "/tickle", nil)
	mustStatus(t, "tickle after expiry", r, http.StatusOK)
	r.json(t, &tk)
	if tk.Iserver.AuthStatus.Authenticated {
		t.Errorf("tickle after expiry still authenticated: %s", r.Body)
	}
	r = c.call(http.MethodGet, "/iserver/accounts", nil)
	if r.Status != http.StatusBadRequest || string(r.Body) != noBridge {
		t.Errorf("accounts after expiry: %d %s", r.Status, r.Body)
	}
	// A new session needs /accounts again.
	mustStatus(t, "re-init", c.call(http.MethodPost, "/iserver/auth/ssodh/init", map[string]bool{"publish": true, "compete": true}), http.StatusOK)
	mustStatus(t, "order after re-init", c.call(http.MethodPost, "/iserver/account/"+c.account+"/orders", order), http.StatusBadRequest)

	r = c.call(http.MethodPost, "/logout", nil)
	mustStatus(t, "logout", r, http.StatusOK)
	if diff := cmp.Diff(`{"status":true}`, string(r.Body)); diff != "" {
		t.Errorf("logout (-want +got):\n%s", diff)
	}
	mustStatus(t, "after logout", c.call(http.MethodPost, "/tickle", nil), http.StatusUnauthorized)
}

func TestLSTExpiryAndSupersession(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{LSTTTL: time.Minute, Pacing: ibkrsim.Pacing{Disabled: true}})
	c := f.register("")
	mustStatus(t, "fresh LST", c.call(http.MethodPost, "/tickle", nil), http.StatusOK)
	f.clock.Advance(time.Minute)
	mustStatus(t, "expired LST", c.call(http.MethodPost, "/tickle", nil), http.StatusUnauthorized)

	if _, err := c.handshake(); err != nil {
		t.Fatal(err)
	}
	old := c.lst
	if _, err := c.handshake(); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, "superseded LST", c.callWith(old, http.MethodPost, "/tickle", nil), http.StatusUnauthorized)
	mustStatus(t, "current LST", c.call(http.MethodPost, "/tickle", nil), http.StatusOK)
}

func TestUnknownConsumerShape(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{})
	c := f.register("")
	c.key = "NOTACONSU"
	_, err := c.handshake()
	if err == nil {
		t.Fatal("unknown consumer got a token")
	}
	r := c.call(http.MethodPost, "/tickle", nil)
	mustStatus(t, "unknown consumer", r, http.StatusUnauthorized)
	if !regexp.MustCompile(`^\{"error":"id: \d+, error: invalid consumer","statusCode":401\}$`).Match(r.Body) {
		t.Errorf("body %s", r.Body)
	}
}

func TestRealmRules(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{})
	c := f.register("")
	c.realm = "test_realm"
	if status, _ := c.handshake(); status != http.StatusUnauthorized {
		t.Errorf("test_realm for a self-service consumer: status %d, want 401", status)
	}
	v := loadVectors(t)
	cons := v.consumer()
	cons.ConsumerKey = "QAVECTORB"
	cons.Realm = "test_realm"
	if err := f.sim.AddConsumer(cons); err == nil {
		t.Error("AddConsumer accepted test_realm for a consumer other than TESTCONS")
	}
	cons.ConsumerKey = "TESTCONS"
	if err := f.sim.AddConsumer(cons); err != nil {
		t.Errorf("TESTCONS with test_realm: %v", err)
	}
}

func TestCompetingFault(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}})
	c := f.ready("")
	f.fault("competing", "/tickle", nil, 1)

	var tk tickle
	r := c.call(http.MethodPost, "/tickle", nil)
	mustStatus(t, "tickle", r, http.StatusOK)
	r.json(t, &tk)
	want := authStatus{Competing: true, Connected: true}
	if diff := cmp.Diff(want, tk.Iserver.AuthStatus); diff != "" || !tk.Collission {
		t.Errorf("tickle while competing (-want +got):\n%s\n%s", diff, r.Body)
	}
	wantHeldElsewhere(t, f, c, want, "while competing")
	wantTakenBack(t, f, c)
}

// TestCompetingLoginOutlivesANewToken: another login holds the username's
// brokerage session whatever happens to the consumer's live session token:
// after a new handshake the session is still held until an init with
// compete:true takes it back.
func TestCompetingLoginOutlivesANewToken(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}})
	c := f.ready("")
	f.fault("competing", "/tickle", nil, 1)
	mustStatus(t, "tickle", c.call(http.MethodPost, "/tickle", nil), http.StatusOK)
	if _, err := c.handshake(); err != nil {
		t.Fatal(err)
	}
	wantHeldElsewhere(t, f, c, authStatus{Competing: true}, "after a new token")
	wantTakenBack(t, f, c)
}

// wantHeldElsewhere checks what c sees while another login holds the
// brokerage session: the auth status and an init with compete:false
// answer want, /iserver answers "no bridge", and nobody is signed out.
func wantHeldElsewhere(t *testing.T, f *fixture, c *client, want authStatus, when string) {
	t.Helper()
	var st authStatus
	c.call(http.MethodPost, "/iserver/auth/status", nil).json(t, &st)
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("auth status %s (-want +got):\n%s", when, diff)
	}
	if r := c.call(http.MethodGet, "/iserver/accounts", nil); string(r.Body) != noBridge {
		t.Errorf("accounts %s: %d %s", when, r.Status, r.Body)
	}
	c.call(http.MethodPost, "/iserver/auth/ssodh/init", map[string]bool{"publish": true, "compete": false}).json(t, &st)
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("init compete:false %s (-want +got):\n%s", when, diff)
	}
	if n := f.sim.Stats()[c.key].OtherLoginsSignedOut; n != 0 {
		t.Errorf("%d other logins signed out %s, want none", n, when)
	}
}

// wantTakenBack checks that an init with compete:true takes the session
// back from the other login, signing it out.
func wantTakenBack(t *testing.T, f *fixture, c *client) {
	t.Helper()
	var st authStatus
	c.call(http.MethodPost, "/iserver/auth/ssodh/init", map[string]bool{"publish": true, "compete": true}).json(t, &st)
	if diff := cmp.Diff(authStatus{Authenticated: true, Connected: true}, st); diff != "" {
		t.Errorf("init compete:true (-want +got):\n%s", diff)
	}
	mustStatus(t, "accounts after taking the session back", c.call(http.MethodGet, "/iserver/accounts", nil), http.StatusOK)
	if n := f.sim.Stats()[c.key].OtherLoginsSignedOut; n != 1 {
		t.Errorf("init compete:true signed %d other logins out, want 1", n)
	}
}
