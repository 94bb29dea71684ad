package broker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/clocktest"
	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
)

func sameLST(a, b *ibkr.Session) bool {
	return a != nil && b != nil && a.Token().Value == b.Token().Value
}

// mustAccounts proves a session works end to end: an /iserver call that
// needs a live LST, an open brokerage session and accounts queried.
// wantHandshakes fails the test unless the simulator has seen want live
// session token handshakes; when says at what point of the test.
func (e *env) wantHandshakes(t *testing.T, want int64, when string) {
	t.Helper()
	if when == "" {
		when = "so far"
	}
	if got := e.sim.handshakes.Load(); got != want {
		t.Errorf("handshakes %s = %d, want %d", when, got, want)
	}
}

// warmSession connects a user to DU1234567 and calls IBKR once through the
// cache, which leaves the user's session cached and ready.
func (e *env) warmSession(t *testing.T, ctx context.Context) (string, Input, *Cache) {
	t.Helper()
	u, in := e.connected("DU1234567")
	c := e.svc.Cache()
	mustAccounts(t, ctx, c, u)
	return u, in, c
}

func mustAccounts(t *testing.T, ctx context.Context, c *Cache, u string) {
	t.Helper()
	err := c.Do(ctx, u, func(ctx context.Context, s *ibkr.Session, conn Conn) error {
		l, err := s.Accounts(ctx)
		if err == nil && !l.Has(conn.AccountID) {
			t.Errorf("accounts %v lack %s", l.Accounts, conn.AccountID)
		}
		return err
	})
	if err != nil {
		t.Fatalf("call through the cache: %v", err)
	}
}

func TestSingleFlight(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	u, in := e.connected("DU1234567")
	c := e.svc.Cache()

	const n = 1000
	start := make(chan struct{})
	var wg sync.WaitGroup
	sessions := make([]*ibkr.Session, n)
	conns := make([]Conn, n)
	errsSeen := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			sessions[i], conns[i], errsSeen[i] = c.Session(ctx, u)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errsSeen[i] != nil {
			t.Fatalf("request %d: %v", i, errsSeen[i])
		}
		if sessions[i].Token().Value != sessions[0].Token().Value {
			t.Fatalf("request %d got another live session token", i)
		}
	}
	e.wantHandshakes(t, 1, "")
	if got := c.Handshakes(); got != 1 {
		t.Errorf("handshakes counted by the cache = %d, want 1", got)
	}
	want := Conn{UserID: u, Mode: Paper, ConsumerKey: in.ConsumerKey, AccountID: "DU1234567"}
	if diff := cmp.Diff(want, conns[0]); diff != "" {
		t.Errorf("conn (-want +got):\n%s", diff)
	}
	mustAccounts(t, ctx, c, u)
	e.wantHandshakes(t, 1, "after a warm call")
}

func TestNoConnectionAndFailureBackoff(t *testing.T) {
	e := newEnv(t, envOptions{fake: true, cache: CacheConfig{FailureBackoff: 10 * time.Second}})
	ctx := ctxT(t)
	c := e.svc.Cache()

	if _, _, err := c.Session(ctx, e.user()); !errs.Is(err, errs.BrokerNotConnected) {
		t.Errorf("no connection saved: %v, want %s", err, errs.BrokerNotConnected)
	}

	u := e.user()
	in, cons := e.sim.registerConsumer("DU1234567") // IBKR has not activated it yet
	if _, err := e.svc.Save(ctx, u, Paper, in, Actor{}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, _, err := c.Session(ctx, u)
		if !errs.Is(err, errs.BrokerConsumerNotRecognized) {
			t.Fatalf("attempt %d: %v, want %s", i, err, errs.BrokerConsumerNotRecognized)
		}
	}
	e.wantHandshakes(t, 1, "during the back-off (the failure is remembered)")
	if st, _ := c.State(u); st.State != StateFailed || st.LastError != errs.BrokerConsumerNotRecognized {
		t.Errorf("state = %+v, want failed with %s", st, errs.BrokerConsumerNotRecognized)
	}

	// IBKR activates the consumer: within the back-off the failure still
	// stands, after it the next request succeeds.
	e.sim.addConsumer(cons)
	if _, _, err := c.Session(ctx, u); !errs.Is(err, errs.BrokerConsumerNotRecognized) {
		t.Errorf("within the back-off: %v", err)
	}
	e.clock.Advance(11 * time.Second)
	if _, _, err := c.Session(ctx, u); err != nil {
		t.Fatalf("after the back-off: %v", err)
	}
	e.wantHandshakes(t, 2, "")
	mustAccounts(t, ctx, c, u)
}

// TestUnreachableIBKRIsRetriedAtOnce: a handshake that failed because IBKR
// could not be reached is not remembered like a refusal is: the next
// request tries again at once, within what would be the back-off.
func TestUnreachableIBKRIsRetriedAtOnce(t *testing.T) {
	e := newEnv(t, envOptions{fake: true, cache: CacheConfig{FailureBackoff: time.Hour}})
	ctx := ctxT(t)
	c := e.svc.Cache()
	u := e.user()
	if _, err := e.svc.Save(ctx, u, Paper, e.sim.register("DU1234567", true), Actor{}); err != nil {
		t.Fatal(err)
	}
	e.sim.down.Store(true)
	for i := range 2 {
		if _, _, err := c.Session(ctx, u); !errs.Is(err, errs.BrokerUnavailable) {
			t.Fatalf("IBKR down, attempt %d: %v, want %s", i, err, errs.BrokerUnavailable)
		}
	}
	if st, _ := c.State(u); st.State != StateFailed {
		t.Errorf("state while IBKR is down = %+v, want failed", st)
	}
	e.sim.down.Store(false) // IBKR is back; no time passes
	if _, _, err := c.Session(ctx, u); err != nil {
		t.Fatalf("the first request after IBKR came back: %v, want a session", err)
	}
	mustAccounts(t, ctx, c, u)
	e.wantHandshakes(t, 1, "that reached IBKR")
}

func TestRenewalBeforeExpiry(t *testing.T) {
	e := newEnv(t, envOptions{
		fake: true,
		sim:  ibkrsim.Config{LSTTTL: 10 * time.Minute, SessionIdleTimeout: time.Hour},
		cache: CacheConfig{RenewBefore: 2 * time.Minute, RenewJitter: time.Minute,
			Jitter: func(max time.Duration) time.Duration { return max / 2 }},
	})
	ctx := ctxT(t)
	u, _ := e.connected("DU1234567")
	c := e.svc.Cache()
	t0 := e.clock.Now()

	s1, _, err := c.Session(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := c.State(u)
	if !st.LSTExpiresAt.Equal(t0.Add(10*time.Minute)) || !st.RenewAt.Equal(t0.Add(10*time.Minute-2*time.Minute-30*time.Second)) {
		t.Fatalf("LST expires %v, renews %v; want +10m and +7m30s", st.LSTExpiresAt, st.RenewAt)
	}

	e.clock.Advance(7 * time.Minute)
	if s, _, err := c.Session(ctx, u); err != nil || !sameLST(s, s1) {
		t.Fatalf("before the renewal time: %v, same LST %v", err, sameLST(s, s1))
	}
	if got := e.sim.handshakes.Load(); got != 1 {
		t.Fatalf("handshakes before the renewal time = %d, want 1", got)
	}

	// Past the renewal time but before expiry: the caller is served at
	// once with the current LST while a new one is made.
	e.clock.Advance(time.Minute)
	if s, _, err := c.Session(ctx, u); err != nil || !sameLST(s, s1) {
		t.Fatalf("at the renewal time: %v, same LST %v", err, sameLST(s, s1))
	}
	clocktest.WaitFor(t, "the renewal", func() bool {
		st, _ := c.State(u)
		return e.sim.handshakes.Load() == 2 && st.State == StateReady && st.LSTExpiresAt.After(t0.Add(10*time.Minute))
	})
	s2, _, err := c.Session(ctx, u)
	if err != nil || sameLST(s2, s1) {
		t.Fatalf("after renewal: %v, new LST %v", err, !sameLST(s2, s1))
	}
	if !s2.Expires().Equal(t0.Add(18 * time.Minute)) {
		t.Errorf("renewed LST expires %v, want %v", s2.Expires(), t0.Add(18*time.Minute))
	}
	mustAccounts(t, ctx, c, u)

	// The keep-alive renews too, without any request.
	e.clock.Advance(8 * time.Minute)
	if s := c.sweep(ctx); s.repairs != 1 {
		t.Errorf("sweep repairs = %d, want 1 renewal", s.repairs)
	}
	clocktest.WaitFor(t, "the keep-alive renewal", func() bool {
		st, _ := c.State(u)
		return e.sim.handshakes.Load() == 3 && st.State == StateReady
	})
	mustAccounts(t, ctx, c, u)
}

func TestRenewalJitterSpreadsTenants(t *testing.T) {
	now := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	var draws []time.Duration
	c := newCache(CacheConfig{
		RenewBefore: time.Hour, RenewJitter: 30 * time.Minute,
		Now: func() time.Time { return now },
		Jitter: func(max time.Duration) time.Duration {
			d := time.Duration(len(draws)) * max / 4
			draws = append(draws, d)
			return d
		},
	}, ibkr.Options{}, nil, nil)
	exp := now.Add(24 * time.Hour)
	var got []time.Duration
	for range 4 {
		got = append(got, exp.Sub(c.renewAt(exp)))
	}
	want := []time.Duration{60 * time.Minute, 67*time.Minute + 30*time.Second, 75 * time.Minute, 82*time.Minute + 30*time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("renewal lead times (-want +got):\n%s", diff)
	}
	// A short-lived LST is used for at least half its life.
	if d := c.renewAt(now.Add(10 * time.Minute)).Sub(now); d != 5*time.Minute {
		t.Errorf("renewal of a 10-minute LST after %v, want 5m", d)
	}
	// The default jitter stays within its bound and varies.
	d := newCache(CacheConfig{}, ibkr.Options{}, nil, nil)
	seen := map[time.Duration]bool{}
	for range 50 {
		j := d.cfg.Jitter(d.cfg.RenewJitter)
		if j < 0 || j >= 30*time.Minute {
			t.Fatalf("jitter %v out of [0, 30m)", j)
		}
		seen[j] = true
	}
	if len(seen) < 10 {
		t.Errorf("only %d distinct jitters in 50 draws", len(seen))
	}
}

func TestInvalidationOnChange(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	u, first := e.connected("DU1234567")
	c := e.svc.Cache()
	if _, _, err := c.Session(ctx, u); err != nil {
		t.Fatal(err)
	}

	// New credentials: the cached session is gone at once, and the next
	// request uses the new consumer.
	second := e.sim.register("DU1234567", true)
	if _, err := e.svc.Save(ctx, u, Paper, second, Actor{}); err != nil {
		t.Fatal(err)
	}
	if st, ok := c.State(u); ok {
		t.Fatalf("session still cached after the credentials changed: %+v", st)
	}
	_, conn, err := c.Session(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if conn.ConsumerKey != second.ConsumerKey || conn.ConsumerKey == first.ConsumerKey {
		t.Errorf("session for consumer %s, want the new %s", conn.ConsumerKey, second.ConsumerKey)
	}

	// A change while a handshake is in flight: the flight's session (old
	// credentials) is thrown away and the waiter gets the new one.
	third := e.sim.register("DU1234567", true)
	e.sim.fault(map[string]any{"path": "/oauth/live_session_token", "kind": "latency", "value": "300ms", "count": 1, "consumer_key": second.ConsumerKey})
	c.Invalidate(u)
	before := e.sim.handshakes.Load()
	done := make(chan Conn, 1)
	go func() {
		_, conn, err := c.Session(ctx, u)
		if err != nil {
			t.Errorf("session during the change: %v", err)
		}
		done <- conn
	}()
	clocktest.WaitFor(t, "the slow handshake to start", func() bool { return e.sim.handshakes.Load() > before })
	if _, err := e.svc.Save(ctx, u, Paper, third, Actor{}); err != nil {
		t.Fatal(err)
	}
	if conn := <-done; conn.ConsumerKey != third.ConsumerKey {
		t.Errorf("waiter got consumer %s, want the newest %s", conn.ConsumerKey, third.ConsumerKey)
	}

	// Switching the active mode and deleting drop it too, and leave nothing
	// to connect with.
	wantDropped := func(after string) {
		t.Helper()
		if _, ok := c.State(u); ok {
			t.Errorf("session still cached after %s", after)
		}
		if _, _, err := c.Session(ctx, u); !errs.Is(err, errs.BrokerNotConnected) {
			t.Errorf("session after %s: %v, want %s", after, err, errs.BrokerNotConnected)
		}
	}
	if err := e.svc.SetActive(ctx, u, Live, Actor{}); err != nil {
		t.Fatal(err)
	}
	wantDropped("the active mode changed to live, which has no credentials")
	if err := e.svc.SetActive(ctx, u, Paper, Actor{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Session(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Delete(ctx, u, Paper, Actor{}); err != nil {
		t.Fatal(err)
	}
	wantDropped("the credentials were deleted")
}

func TestRecoveryAfterSimulatorRestart(t *testing.T) {
	e := newEnv(t, envOptions{fake: true})
	ctx := ctxT(t)
	u, _, c := e.warmSession(t, ctx)

	// IBKR restarts: every token and brokerage session is forgotten. The
	// first call gets a 401, which makes one new handshake, and succeeds.
	e.sim.restart()
	mustAccounts(t, ctx, c, u)
	e.wantHandshakes(t, 2, "")

	// Again, found by the keep-alive instead of a request.
	e.sim.restart()
	e.clock.Advance(2 * time.Minute)
	c.sweep(ctx)
	clocktest.WaitFor(t, "the keep-alive to recover", func() bool {
		st, _ := c.State(u)
		return e.sim.handshakes.Load() == 3 && st.State == StateReady
	})
	mustAccounts(t, ctx, c, u)
	e.wantHandshakes(t, 3, "")
}

func TestUnauthorizedMakesOneNewHandshake(t *testing.T) {
	e := newEnv(t, envOptions{fake: true})
	ctx := ctxT(t)
	u, in, c := e.warmSession(t, ctx)

	e.sim.fault(map[string]any{"path": "/iserver/accounts", "kind": "invalid_lst", "count": 1, "consumer_key": in.ConsumerKey})
	mustAccounts(t, ctx, c, u)
	e.wantHandshakes(t, 2, "after one 401")

	// IBKR keeps refusing, after the handshake budget's interval: exactly
	// one more handshake, then the error.
	e.clock.Advance(c.cfg.RepairEvery)
	e.sim.fault(map[string]any{"path": "/iserver/accounts", "kind": "invalid_lst", "count": 0, "consumer_key": in.ConsumerKey})
	err := c.Do(ctx, u, func(ctx context.Context, s *ibkr.Session, _ Conn) error {
		_, err := s.Accounts(ctx)
		return err
	})
	if !errs.Is(err, errs.BrokerTokenExpired) {
		t.Errorf("persistent 401: %v, want %s", err, errs.BrokerTokenExpired)
	}
	e.wantHandshakes(t, 3, "after a persistent 401")
}

// The allowlisted reply questions are suppressed in each new brokerage
// session, so IBKR's first-order question (o163) does not stop an order.
func TestSuppressedQuestions(t *testing.T) {
	for _, tt := range []struct {
		name     string
		suppress []string
		want     ibkr.Kind
	}{
		{"none suppressed", []string{}, ibkr.KindQuestionDeclined},
		{"o163 suppressed", []string{"o163", "o354"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{questions: tt.suppress})
			ctx := ctxT(t)
			u, _ := e.connected("DU1234567")
			err := e.svc.Cache().Do(ctx, u, func(ctx context.Context, s *ibkr.Session, conn Conn) error {
				l, err := s.USStock(ctx, "AAPL")
				if err != nil {
					return err
				}
				_, err = s.PlaceOrder(ctx, conn.AccountID, ibkr.Order{Conid: l.Conid, COID: "c-" + tt.name[:4], OrderType: "MKT", Side: "BUY", Quantity: 1, TIF: "DAY"}, nil)
				return err
			})
			if got := ibkr.KindOf(err); got != tt.want {
				t.Errorf("order: kind %q (%v), want %q", got, err, tt.want)
			}
		})
	}
}

func TestActiveAccount(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	u, _ := e.connected("DU7654321")
	want := Account{Mode: Paper, ID: "DU7654321", Masked: "DU•••4321"}
	for _, warm := range []bool{false, true} {
		if warm {
			if _, _, err := e.svc.Cache().Session(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		got, err := e.svc.ActiveAccount(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("warm=%v (-want +got):\n%s", warm, diff)
		}
	}
	if _, err := e.svc.ActiveAccount(ctx, e.user()); !errs.Is(err, errs.BrokerNotConnected) {
		t.Errorf("no connection: %v", err)
	}
	e.wantHandshakes(t, 1, "after ActiveAccount, which must not call IBKR")
}

// The decrypted keys and the access token secret are dropped (the secret's
// bytes zeroed) as soon as the handshake is done.
func TestDecryptedKeysDroppedAfterHandshake(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	u, _ := e.connected("DU1234567")
	var loaded *ibkr.Credentials
	var secret []byte
	c := newCache(CacheConfig{}, ibkr.Options{BaseURL: e.sim.baseURL()}, func(ctx context.Context, userID string, known knownSecret) (Conn, *ibkr.Credentials, knownSecret, error) {
		conn, creds, next, err := e.svc.loadActive(ctx, userID, known)
		loaded, secret = creds, creds.AccessTokenSecret
		return conn, creds, next, err
	}, nil)
	if _, _, err := c.Session(ctx, u); err != nil {
		t.Fatal(err)
	}
	if loaded.SignatureKey != nil || loaded.EncryptionKey != nil || loaded.AccessTokenSecret != nil || loaded.DHPrime != nil {
		t.Errorf("credentials kept after the handshake: %v", loaded)
	}
	if len(secret) == 0 {
		t.Fatal("no access token secret was loaded")
	}
	for _, b := range secret {
		if b != 0 {
			t.Fatal("the access token secret's bytes were not zeroed")
		}
	}
}
