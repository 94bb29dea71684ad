package ibkrsim_test

import (
	"net/http"
	"testing"

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
