package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/config"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ibkrsim/simtest"
	"github.com/ordertune/ordertune/internal/market"
	"github.com/ordertune/ordertune/internal/notify"
	"github.com/ordertune/ordertune/internal/notify/mailcatch"
	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/trading"
)

// runAsCommand, set to 1 in a test binary's environment, makes it run the
// ordertune command instead of the tests (TestMain).
const runAsCommand = "ORDERTUNE_TEST_RUN_AS_COMMAND"

// gate holds deliveries of one event in flight: the first request waits
// until the gate opens, and is then refused; later ones pass.
type gate struct {
	arrived chan struct{} // closed when the first one arrives
	open    chan struct{}
	once    sync.Once
}

func newGate() *gate { return &gate{arrived: make(chan struct{}), open: make(chan struct{})} }

// hold reports whether this request was held (and must be refused).
func (g *gate) hold() bool {
	first := false
	g.once.Do(func() { first = true; close(g.arrived) })
	if first {
		<-g.open
	}
	return first
}

// process is a running `ordertune serve`; exited closes when it ends.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// serveProcess starts `ordertune serve` as a process of its own (this test
// binary as the command) and waits until it is ready.
func serveProcess(t *testing.T, env map[string]string, logs io.Writer) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = append(os.Environ(), runAsCommand+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	done := make(chan error, 1)
	go func() { err := cmd.Wait(); close(p.exited); done <- err }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	waitHTTP(t, "http://"+env["ORDERTUNE_ADDR"]+"/readyz", done)
	return p
}

// TestFillNotifiedAfterSIGKILL: `ordertune serve` is killed (SIGKILL) right
// after it committed a fill, while the fill's webhook and e-mail are on
// their way (both receivers hold them). After a restart the webhook and
// the e-mail arrive, each once, carrying the fill's event id: the same id
// the interrupted attempts carried.
func TestFillNotifiedAfterSIGKILL(t *testing.T) {
	sim := ibkrsim.New(ibkrsim.Config{})
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)

	hookGate, mailGate := newGate(), newGate()
	var mu sync.Mutex
	var heldHookID string
	var hookIDs []string // accepted deliveries of order.filled
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), `"type":"order.filled"`) {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		id := r.Header.Get("webhook-id")
		if hookGate.hold() {
			mu.Lock()
			heldHookID = id
			mu.Unlock()
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		hookIDs = append(hookIDs, id)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hooks.Close)
	var heldMailID string
	mc, err := mailcatch.Start(mailcatch.Options{Gate: func(m mailcatch.Message) error {
		if !strings.Contains(m.Header("Subject"), "Order filled") {
			return nil
		}
		if mailGate.hold() {
			mu.Lock()
			heldMailID = m.Header("Message-Id")
			mu.Unlock()
			return errors.New("held, then refused")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	certFile := filepath.Join(t.TempDir(), "mailcatch.pem")
	if err := os.WriteFile(certFile, mc.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}

	key := make([]byte, 32)
	rand.Read(key)
	addr := freeAddr(t)
	env := map[string]string{
		"DATABASE_URL":                    pgtest.DB(t),
		"ORDERTUNE_ADDR":                  addr,
		"ORDERTUNE_MASTER_KEYS":           "k1:" + base64.StdEncoding.EncodeToString(key),
		"ORDERTUNE_IBKR_BASE_URL":         simSrv.URL + ibkrsim.APIPrefix,
		"ORDERTUNE_SMTP_URL":              "smtp://" + mc.Addr(),
		"ORDERTUNE_MAIL_FROM":             "Ordertune <alerts@ordertune.test>",
		"ORDERTUNE_WEBHOOK_ALLOW_PRIVATE": "true",
		"ORDERTUNE_NOTIFY_RESCUE_AFTER":   "3s",
		"ORDERTUNE_LOG_LEVEL":             "warn",
		// IBKR's nightly restart would refuse the confirm when the test
		// runs in it (about 23:45–01:45 New York time).
		"ORDERTUNE_IBKR_MAINTENANCE": "none",
		"SSL_CERT_FILE":              certFile, // the process trusts the catcher's certificate
	}

	// The fixtures, written with the same wiring in this process: a
	// subscriber with TOTP, paper credentials the simulator knows, a
	// position size, an open signal and a webhook endpoint for fills.
	fixEnv := map[string]string{}
	for k, v := range env {
		if !strings.HasPrefix(k, "ORDERTUNE_SMTP") && !strings.HasPrefix(k, "ORDERTUNE_MAIL") {
			fixEnv[k] = v
		}
	}
	cfg, err := config.Load(func(k string) string { return fixEnv[k] }, false)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := postgres.Open(t.Context(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	fix, err := build(cfg, zerolog.Nop(), pool)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	admin, _, err := fix.auth.CreateUserWithTOTP(ctx, auth.NewUser{Email: "admin@example.com", Role: auth.Admin, Password: "admin password 1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	sub, userID := e2eUser(t, fix, "filled@example.com")
	consumer, creds := simtest.Register(t, "DU5550001")
	if err := sim.AddConsumer(consumer); err != nil {
		t.Fatal(err)
	}
	in := broker.Input{ConsumerKey: creds.ConsumerKey, AccessToken: creds.AccessToken, AccessTokenSecret: creds.AccessTokenSecret,
		SignatureKeyPEM: creds.SignaturePrivateKeyPEM, EncryptionKeyPEM: creds.EncryptionPrivateKeyPEM,
		DHParams: creds.DHPrimeHex, AccountID: creds.AccountID}
	if _, err := fix.broker.Save(ctx, userID, broker.Paper, in, broker.Actor{UserID: userID}); err != nil {
		t.Fatal(err)
	}
	three := "3"
	if _, err := fix.trading.SetPositionSize(ctx, userID, trading.PositionSize{Mode: "shares", Value: &three}); err != nil {
		t.Fatal(err)
	}
	aapl, _ := sim.Security("AAPL")
	clock := market.Default()
	signal, err := fix.trading.CreateSignal(ctx, admin.ID, trading.NewSignal{Ticker: "AAPL", Strategy: "I", Kind: "entry",
		SignalDate: clock.Now().In(clock.Location()).Format(time.DateOnly), EntryDate: entryDate(clock, "next_open_market"),
		RefClose: fmt.Sprintf("%.2f", aapl.RefPrice), RSI2: "6.2", Return2D: "-0.0241", EntryMode: "next_open_market"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fix.notify.CreateEndpoint(ctx, userID, notify.NewEndpoint{URL: hooks.URL + "/hook", EventTypes: []string{notify.OrderFilled}}); err != nil {
		t.Fatal(err)
	}

	logs := &syncBuffer{}
	proc := serveProcess(t, env, logs)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve's output:\n%s", logs)
		}
	})
	c := signIn(t, "http://"+addr, sub)
	var conf struct{ ID, Status string }
	c.do(t, "POST", "/api/v1/signals/"+signal.ID+"/confirm", map[string]string{"side": "BUY"}, 201, &conf)
	if conf.Status != "submitted" {
		t.Fatalf("confirmation %s, want submitted", conf.Status)
	}
	resp, err := http.Post(simSrv.URL+"/sim/auction/open", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// The reconciler commits the fill; its deliveries start; both are
	// held; the process dies.
	wait := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(90 * time.Second):
			t.Fatalf("%s never arrived", what)
		}
	}
	wait("the fill's webhook", hookGate.arrived)
	wait("the fill's e-mail", mailGate.arrived)
	if err := proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-proc.exited
	close(hookGate.open)
	close(mailGate.open)
	var eventID string
	if err := pool.QueryRow(ctx, `SELECT id FROM notification_events WHERE user_id = $1 AND type = 'order.filled'`, userID).Scan(&eventID); err != nil {
		t.Fatalf("the fill's event: %v", err)
	}

	// Restarted, the process takes up the interrupted deliveries.
	serveProcess(t, env, logs)
	deadline := time.Now().Add(2 * time.Minute)
	var mails []string
	for {
		mails = mails[:0]
		for _, m := range mc.Messages() {
			if strings.Contains(m.Header("Subject"), "Order filled") {
				mails = append(mails, m.Header("Message-Id"))
			}
		}
		mu.Lock()
		n := len(hookIDs)
		mu.Unlock()
		if (n > 0 && len(mails) > 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // room for a duplicate
	mu.Lock()
	defer mu.Unlock()
	if len(hookIDs) != 1 || hookIDs[0] != eventID || heldHookID != eventID {
		t.Errorf("webhooks of the fill: held %q, then accepted %v; want one, with the event id %s", heldHookID, hookIDs, eventID)
	}
	wantMailID := "<" + eventID + "@ordertune>"
	mails = mails[:0]
	for _, m := range mc.Messages() {
		if strings.Contains(m.Header("Subject"), "Order filled") {
			mails = append(mails, m.Header("Message-Id"))
		}
	}
	if len(mails) != 1 || mails[0] != wantMailID || heldMailID != wantMailID {
		t.Errorf("e-mails of the fill: held %q, then received %v; want one, %s", heldMailID, mails, wantMailID)
	}
}

// e2eUser creates a subscriber with TOTP through svc and returns its
// login and id.
func e2eUser(t *testing.T, svc *services, email string) (demoUser, string) {
	t.Helper()
	const pw = "subscriber password 1"
	u, en, err := svc.auth.CreateUserWithTOTP(t.Context(), auth.NewUser{Email: email, Role: auth.Subscriber, Password: pw}, "")
	if err != nil {
		t.Fatal(err)
	}
	return demoUser{Email: email, Password: pw, TOTPSecret: en.Secret}, u.ID
}
