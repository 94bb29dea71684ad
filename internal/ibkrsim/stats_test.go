package ibkrsim_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// TestStatsCountSupersededTokensAndTakeovers is what the replica tests rely
// on: a second handshake for a consumer supersedes the first token, a
// request signed with the old one is refused and counted, and an init while
// a brokerage session is alive counts as a competing take-over.
func TestStatsCountSupersededTokensAndTakeovers(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{Pacing: ibkrsim.Pacing{Disabled: true}})
	a := f.ready("DU1111111") // handshake, init, accounts
	// A second replica hand-shakes for the same consumer.
	b := &client{t: t, base: a.base, signAs: a.signAs, key: a.key, token: a.token, realm: a.realm,
		secret: a.secret, sigKey: a.sigKey, prime: a.prime, now: a.now, http: a.http, account: a.account}
	b.nonce.Store(1 << 20) // nonces of its own
	if _, err := b.handshake(); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, "request with the superseded token", a.call(http.MethodPost, "/tickle", nil), http.StatusUnauthorized)
	mustStatus(t, "request with the new token", b.call(http.MethodPost, "/tickle", nil), http.StatusOK)
	mustStatus(t, "init", b.call(http.MethodPost, "/iserver/auth/ssodh/init", map[string]bool{"compete": true}), http.StatusOK)
	mustStatus(t, "init over a live session", b.call(http.MethodPost, "/iserver/auth/ssodh/init", map[string]bool{"compete": true}), http.StatusOK)

	var got map[string]ibkrsim.ConsumerStats
	f.control(http.MethodGet, "/sim/stats", nil).json(t, &got)
	want := map[string]ibkrsim.ConsumerStats{a.key: {
		Handshakes: 2, SupersededLSTRefusals: 1, Inits: 3, CompetingTakeovers: 1,
		Requests: 5, // init, accounts (a); tickle, two inits (b)
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/sim/stats (-want +got):\n%s", diff)
	}
}

// TestLatencyHoldsEveryAPIRequest: with Config.Latency every IBKR call,
// the handshake included, is held (a client that waits less gives up), and
// unlike the latency fault it never runs out; the control API answers at
// once. No timing is asserted: the held requests outlast the client's
// deadline by an hour.
func TestLatencyHoldsEveryAPIRequest(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{Latency: time.Hour})
	k := keysOnce()
	cons, _, err := ibkrsim.Register(ibkrsim.RegisterOptions{SignatureKey: k.sig, EncryptionKey: k.enc})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sim.AddConsumer(cons); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, f.srv, cons, k.sig, f.clock.Now)
	c.http = &http.Client{Timeout: 100 * time.Millisecond}
	for i := range 3 {
		if _, err := c.handshake(); !isTimeout(err) {
			t.Fatalf("handshake %d: err %v, want a timeout", i+1, err)
		}
	}
	if err := c.tryCall(http.MethodPost, "/tickle"); !isTimeout(err) {
		t.Fatalf("tickle: err %v, want a timeout", err)
	}
	r := f.control(http.MethodGet, "/sim/totals", nil)
	mustStatus(t, "totals", r, http.StatusOK)
	var got ibkrsim.Totals
	r.json(t, &got)
	if diff := cmp.Diff(ibkrsim.Totals{Requests: 4}, got); diff != "" {
		t.Errorf("stats after held requests (-want +got):\n%s", diff)
	}

	// A short latency delays the same calls without failing them.
	g := newFixture(t, ibkrsim.Config{Latency: 5 * time.Millisecond})
	g.ready("")
	if got := g.sim.Totals(); got.Handshakes != 1 || got.Requests != 3 {
		t.Errorf("stats with a short latency: %+v, want 1 handshake in 3 requests", got)
	}
}

// TestStatsCountPacingAndSessions: the counters a load test reads — 429s
// and penalty-box answers of IBKR's pacing, tickles served, handshakes and
// brokerage sessions that expired idle.
func TestStatsCountPacingAndSessions(t *testing.T) {
	f := newFixture(t, ibkrsim.Config{SessionIdleTimeout: time.Minute,
		Pacing: ibkrsim.Pacing{PerSecond: 10, Burst: 10, PenaltyBox: 30 * time.Second}})
	c := f.ready("") // handshake, init, accounts
	mustStatus(t, "tickle", c.call(http.MethodPost, "/tickle", nil), http.StatusOK)
	mustStatus(t, "tickle again", c.call(http.MethodPost, "/tickle", nil), http.StatusTooManyRequests)
	f.clock.Advance(2 * time.Minute) // the brokerage session expires idle
	mustStatus(t, "after idle", c.call(http.MethodGet, "/iserver/accounts", nil), http.StatusBadRequest)
	for range 9 { // the bucket refilled while idle; the accounts call took one
		mustStatus(t, "within burst", c.call(http.MethodGet, "/trsrv/stocks?symbols=AAPL", nil), http.StatusOK)
	}
	mustStatus(t, "over the limit", c.call(http.MethodGet, "/trsrv/stocks?symbols=AAPL", nil), http.StatusTooManyRequests)
	mustStatus(t, "in the box", c.call(http.MethodGet, "/trsrv/stocks?symbols=AAPL", nil), http.StatusTooManyRequests)

	want := ibkrsim.Totals{Requests: 17, Handshakes: 1, Tickles: 1, TooManyRequests: 3, PenaltyBox: 2, SessionsExpired: 1}
	if diff := cmp.Diff(want, f.sim.Totals()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}
