package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/clocktest"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ibkrsim/simtest"
	"github.com/ordertune/ordertune/internal/ledger"
	"github.com/ordertune/ordertune/internal/logging/logtest"
	"github.com/ordertune/ordertune/internal/notify"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/seal"
	"github.com/ordertune/ordertune/internal/trading"
)

// brokerEnv is an authEnv whose server also has a broker service talking
// to a simulator over HTTP.
type brokerEnv struct {
	*authEnv
	broker *broker.Service
	sim    *ibkrsim.Server
	simURL string
}

func newBrokerEnv(t *testing.T) *brokerEnv {
	t.Helper()
	return newBrokerEnvWith(t, brokerEnvOptions{logLevel: zerolog.TraceLevel})
}

// brokerEnvOptions adjust newBrokerEnvWith.
type brokerEnvOptions struct {
	logLevel zerolog.Level
	cache    broker.CacheConfig
	// questions is the broker's reply-question allowlist.
	questions []string
	trading   bool // also place orders through the broker service, as `ordertune serve` wires it
}

func newBrokerEnvWith(t testing.TB, o brokerEnvOptions) *brokerEnv {
	t.Helper()
	env := &authEnv{t: t, clock: clocktest.New(time.Now()), logs: &logtest.Sink{}}
	log := zerolog.New(env.logs).Level(o.logLevel)
	pool := pgtest.Pool(t)
	ring := seal.RandomRing("test")
	env.startAuth(auth.Config{Pool: pool, Sealer: ring, Log: log})
	sim, simSrv := simtest.Serve(t, ibkrsim.Config{})
	b, err := broker.New(broker.Config{Pool: pool, Ring: ring,
		IBKR:  ibkr.Options{BaseURL: simSrv.URL + ibkrsim.APIPrefix},
		Cache: o.cache, AllowedQuestions: o.questions})
	if err != nil {
		t.Fatal(err)
	}
	d := Deps{Log: log, Pool: pool, Auth: env.svc, Broker: b}
	if o.trading {
		if d.Trading, err = trading.New(trading.Config{Pool: pool, Broker: b.Orders(), Log: log}); err != nil {
			t.Fatal(err)
		}
		if d.Notify, err = notify.New(notify.Config{Pool: pool, Ring: ring, Log: log, AllowPrivate: true}); err != nil {
			t.Fatal(err)
		}
		if d.Ledger, err = ledger.New(ledger.Config{Pool: pool, Broker: b.Orders(), RecordFills: d.Trading.RecordFills, Log: log}); err != nil {
			t.Fatal(err)
		}
	}
	env.serve(d)
	return &brokerEnv{authEnv: env, broker: b, sim: sim, simURL: simSrv.URL}
}

// register makes a consumer the simulator knows, and remembers every
// secret of it so that the log scan and the body checks look for them.
// connectedSubscriber signs a new subscriber in, stepped up, and saves a
// paper connection to the simulator's account acct; it returns the
// subscriber and their browser.
func (env *brokerEnv) connectedSubscriber(acct string) (account, *client) {
	env.t.Helper()
	sub := env.newAccount(auth.Subscriber, true)
	c := env.signIn(sub).stepUp()
	if r := c.do(http.MethodPut, "/api/v1/broker/paper", env.register(acct)); r.status != http.StatusOK {
		env.t.Fatalf("save the paper connection: %d %s", r.status, r.body)
	}
	return sub, c
}

func (env *brokerEnv) register(acct string) map[string]string {
	env.t.Helper()
	u := simtest.AddConsumer(env.t, env.sim, acct)
	for _, s := range simtest.Secrets(u) {
		env.secret(s)
	}
	return map[string]string{
		"consumer_key": u.ConsumerKey, "access_token": u.AccessToken, "access_token_secret": u.AccessTokenSecret,
		"signature_key_pem": u.SignaturePrivateKeyPEM, "encryption_key_pem": u.EncryptionPrivateKeyPEM,
		"dh_params": u.DHPrimeHex, "account_id": u.AccountID,
	}
}

// ok fails unless r is a 200 without secrets, and decodes its body into v.
func (env *brokerEnv) ok(t *testing.T, what string, r response, v any) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s: %d %s", what, r.status, r.body)
	}
	env.noSecrets(what, r)
	r.json(t, v)
}

// noSecrets fails when a response body holds any remembered secret.
func (env *brokerEnv) noSecrets(what string, r response) {
	env.t.Helper()
	for i, s := range env.logs.Secrets() {
		if strings.Contains(string(r.body), s) {
			env.t.Errorf("%s: the response holds secret number %d", what, i)
		}
	}
}

func TestBrokerOverHTTP(t *testing.T) {
	env := newBrokerEnv(t)
	sub := env.newAccount(auth.Subscriber, true)
	c := env.signIn(sub).stepUp()
	creds := env.register("DU1234567")

	// Per-field validation, with the REST field names.
	bad := map[string]string{}
	for k, v := range creds {
		bad[k] = v
	}
	bad["consumer_key"], bad["dh_params"] = "lower", "00"
	r := c.do(http.MethodPut, "/api/v1/broker/paper", bad)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("invalid PUT: %d %s", r.status, r.body)
	}
	var fields []string
	for _, f := range r.problem(t).Errors {
		fields = append(fields, f.Field)
	}
	if diff := cmp.Diff([]string{"consumer_key", "dh_params"}, fields); diff != "" {
		t.Errorf("422 fields (-want +got):\n%s", diff)
	}
	env.noSecrets("422", r)

	var conn broker.Connection
	env.ok(t, "PUT", c.do(http.MethodPut, "/api/v1/broker/paper", creds), &conn)
	if conn.AccountIDMasked != "DU•••4567" || conn.Status != broker.StatusUntested || conn.ConsumerKey != creds["consumer_key"] {
		t.Errorf("PUT answered %+v", conn)
	}

	var res broker.TestResult
	env.ok(t, "test", c.do(http.MethodPost, "/api/v1/broker/paper/test", nil), &res)
	if !res.OK || len(res.Steps) != 5 {
		t.Errorf("test of the saved set: %+v", res)
	}

	// A not-yet-saved set under live: the paper account fails the
	// accounts step, and the answer is still a 200.
	r = c.do(http.MethodPost, "/api/v1/broker/live/test", creds)
	env.noSecrets("test before saving", r)
	r.json(t, &res)
	if r.status != http.StatusOK || res.OK || res.Error == nil || res.Error.Code != "broker_account_not_found" {
		t.Errorf("live test of a paper account: %d %+v", r.status, res)
	}

	r = c.do(http.MethodGet, "/api/v1/broker", nil)
	env.noSecrets("GET", r)
	var ov struct {
		ActiveMode  string                        `json:"active_mode"`
		Connections map[string]*broker.Connection `json:"connections"`
	}
	r.json(t, &ov)
	if ov.ActiveMode != "paper" || ov.Connections["live"] != nil || ov.Connections["paper"] == nil ||
		ov.Connections["paper"].Status != broker.StatusConnected || ov.Connections["paper"].LastTest == nil {
		t.Errorf("GET /broker: %s", r.body)
	}
	if _, ok := ov.Connections["live"]; !ok {
		t.Errorf("GET /broker must list live as null: %s", r.body)
	}

	// The admin sees the session once it is warm; a subscriber may not look.
	if _, _, err := env.broker.Cache().Session(context.Background(), sub.user.ID); err != nil {
		t.Fatal(err)
	}
	if r := c.do(http.MethodGet, "/api/v1/admin/sessions", nil); r.status != http.StatusForbidden {
		t.Errorf("subscriber GET /admin/sessions: %d", r.status)
	}
	admin := env.signIn(env.newAccount(auth.Admin, true))
	r = admin.do(http.MethodGet, "/api/v1/admin/sessions", nil)
	env.noSecrets("admin sessions", r)
	var sessions struct {
		Items []broker.SessionState `json:"items"`
	}
	r.json(t, &sessions)
	if r.status != http.StatusOK || len(sessions.Items) != 1 || sessions.Items[0].UserID != sub.user.ID ||
		sessions.Items[0].State != broker.StateReady || sessions.Items[0].LSTExpiresAt == nil {
		t.Errorf("GET /admin/sessions: %d %s", r.status, r.body)
	}

	for _, tt := range []struct {
		method, path string
		body         any
		status       int
	}{
		{http.MethodPut, "/api/v1/broker/active", map[string]string{"mode": "sideways"}, http.StatusUnprocessableEntity},
		{http.MethodPut, "/api/v1/broker/active", map[string]string{"mode": "live"}, http.StatusOK},
		{http.MethodPut, "/api/v1/broker/sideways", creds, http.StatusBadRequest},
		{http.MethodPost, "/api/v1/broker/live/test", nil, http.StatusNotFound},
		{http.MethodPost, "/api/v1/broker/paper/test", `{"consumer_key": 7}`, http.StatusUnprocessableEntity},
		{http.MethodDelete, "/api/v1/broker/paper", nil, http.StatusNoContent},
		{http.MethodDelete, "/api/v1/broker/paper", nil, http.StatusNotFound},
	} {
		if r := c.do(tt.method, tt.path, tt.body); r.status != tt.status {
			t.Errorf("%s %s: %d %s, want %d", tt.method, tt.path, r.status, r.body, tt.status)
		}
	}
	r = c.do(http.MethodGet, "/api/v1/broker", nil)
	r.json(t, &ov)
	if ov.ActiveMode != "live" || ov.Connections["paper"] != nil {
		t.Errorf("after switching and deleting: %s", r.body)
	}

	// Another user sees nothing of the first one's connections.
	other := env.signIn(env.newAccount(auth.Subscriber, true))
	r = other.do(http.MethodGet, "/api/v1/broker", nil)
	if !strings.Contains(string(r.body), `"connections":{"live":null,"paper":null}`) {
		t.Errorf("another user's GET /broker: %s", r.body)
	}
}
