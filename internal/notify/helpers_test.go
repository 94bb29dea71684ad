package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/notify"
	"github.com/ordertune/ordertune/internal/notify/mailcatch"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/seal"
)

// rig is one test's real parts: a fresh database, an SMTP server that
// keeps what it receives, and a started notification service.
type rig struct {
	cfg   notify.Config
	pool  *pgxpool.Pool
	svc   *notify.Service
	mail  *mailcatch.Server
	user  string
	email string
}

// newRig starts a service with e-mail through a catcher (STARTTLS and
// AUTH PLAIN), private webhook targets allowed and quick retries, changed
// by tune.
func newRig(t *testing.T, tune func(*notify.Config)) *rig {
	t.Helper()
	return newRigTLS(t, false, tune)
}

// newRigTLS is newRig with the SMTP server speaking TLS from the first
// byte (smtps://) when implicit is set.
func newRigTLS(t *testing.T, implicit bool, tune func(*notify.Config)) *rig {
	t.Helper()
	pool := pgtest.Pool(t)
	mc, err := mailcatch.Start(mailcatch.Options{User: "mailer", Password: "smtp-pass-1", ImplicitTLS: implicit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	scheme := "smtp"
	if implicit {
		scheme = "smtps"
	}
	cfg := notify.Config{
		Pool: pool, Ring: seal.RandomRing("k1"), Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		SMTPURL: scheme + "://mailer:smtp-pass-1@" + mc.Addr(), MailFrom: "Ordertune <alerts@ordertune.test>", MailTLS: mc.ClientTLS(),
		PublicURL: "http://ordertune.test", AllowPrivate: true,
		WebhookBackoff: []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond},
		PollInterval:   20 * time.Millisecond, WebhookTimeout: 2 * time.Second,
	}
	if tune != nil {
		tune(&cfg)
	}
	r := &rig{cfg: cfg, pool: pool, mail: mc}
	r.svc = r.startReplica(t)
	r.user, r.email = newUser(t, pool)
	return r
}

// startReplica starts another notification service on the rig's
// database, as another replica of serve runs one.
func (r *rig) startReplica(t *testing.T) *notify.Service {
	t.Helper()
	svc, err := notify.New(r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return svc
}

func newUser(t *testing.T, pool *pgxpool.Pool) (id, email string) {
	t.Helper()
	err := pool.QueryRow(context.Background(), `
		INSERT INTO users (email, role, password_hash, totp_enabled, created_at, updated_at)
		VALUES ('u-' || gen_random_uuid() || '@example.test', 'subscriber', '!', true, now(), now()) RETURNING id, email`).Scan(&id, &email)
	if err != nil {
		t.Fatal(err)
	}
	return id, email
}

// enqueue commits one event for user.
func (r *rig) enqueue(t *testing.T, user, typ string, data any) string {
	t.Helper()
	var id string
	err := pgx.BeginFunc(context.Background(), r.pool, func(tx pgx.Tx) error {
		var err error
		id, err = r.svc.Enqueue(context.Background(), tx, notify.Event{UserID: user, Type: typ, Data: data})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// hit is one request a receiver accepted as correctly signed.
type hit struct {
	id, ts string
	body   map[string]any
	status int
}

// receiver is a webhook endpoint that checks the Standard Webhooks
// signature with its own code and answers with the statuses of answer
// in turn (200 after they run out).
type receiver struct {
	*httptest.Server
	secret string

	mu      sync.Mutex
	answers []int
	hits    []hit
	bad     []string // why requests were refused
	arrived chan struct{}
}

func newReceiver(t *testing.T, answers ...int) *receiver {
	t.Helper()
	rc := &receiver{answers: answers, arrived: make(chan struct{}, 10000)}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id, ts, sig := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature")
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if why := verify(rc.secret, id, ts, sig, body); why != "" {
		rc.bad = append(rc.bad, why)
		http.Error(w, why, http.StatusUnauthorized)
		return
	}
	status := http.StatusOK
	if len(rc.answers) > 0 {
		status, rc.answers = rc.answers[0], rc.answers[1:]
	}
	var m map[string]any
	json.Unmarshal(body, &m)
	rc.hits = append(rc.hits, hit{id: id, ts: ts, body: m, status: status})
	w.WriteHeader(status)
	rc.arrived <- struct{}{}
}

// verify is the receiving side of Standard Webhooks, written from the
// specification rather than shared with the sender.
func verify(secret, id, ts, header string, body []byte) string {
	if secret == "" || !strings.HasPrefix(secret, "whsec_") {
		return "receiver has no secret"
	}
	key, err := base64.StdEncoding.DecodeString(secret[len("whsec_"):])
	if err != nil {
		return "bad secret"
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return "stale or missing timestamp"
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Fields(header) {
		if v, sig, ok := strings.Cut(s, ","); ok && v == "v1" && hmac.Equal([]byte(sig), []byte(want)) {
			return ""
		}
	}
	return "signature mismatch"
}

// answerNext replaces the statuses still to give.
func (rc *receiver) answerNext(answers ...int) { rc.mu.Lock(); rc.answers = answers; rc.mu.Unlock() }

func (rc *receiver) setSecret(s string) { rc.mu.Lock(); rc.secret = s; rc.mu.Unlock() }

func (rc *receiver) snapshot() ([]hit, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hit(nil), rc.hits...), append([]string(nil), rc.bad...)
}

// waitHits waits until n correctly signed requests arrived.
func (rc *receiver) waitHits(t *testing.T, n int, within time.Duration) []hit {
	t.Helper()
	deadline := time.After(within)
	for {
		hits, bad := rc.snapshot()
		if len(bad) > 0 {
			t.Fatalf("receiver refused requests: %v", bad)
		}
		if len(hits) >= n {
			return hits
		}
		select {
		case <-rc.arrived:
		case <-deadline:
			t.Fatalf("%d of %d webhook requests arrived", len(hits), n)
		}
	}
}

// endpoint registers rc for user's events of types.
func (r *rig) endpoint(t *testing.T, user string, rc *receiver, types ...string) notify.Endpoint {
	t.Helper()
	ep, err := r.svc.CreateEndpoint(context.Background(), user, notify.NewEndpoint{URL: rc.URL + "/hook", EventTypes: types})
	if err != nil {
		t.Fatal(err)
	}
	rc.setSecret(ep.Secret)
	return ep
}

// eventually polls cond until it holds or fails the test after within.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
