package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// TestDemoWalkthrough is the README's promise, checked through the API the
// pages use: on a fresh data folder `ordertune demo` lets the subscriber sign
// in with 2FA, connect the printed simulated IBKR credentials, confirm a
// signal and see it filled after the opening auction, and lets the admin
// find it in the confirmation log.
func TestDemoWalkthrough(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	a, out, _ := testApp(map[string]string{"ORDERTUNE_ADDR": addr, "ORDERTUNE_LOG_LEVEL": "warn"})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, a, []string{"demo", "--data", data, "--quiet", "--auction-every", "0"}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	}()
	base := "http://" + addr
	waitHTTP(t, base+"/readyz", done)

	var st demoState
	readJSON(t, filepath.Join(data, "demo.json"), &st)
	var creds ibkrsim.UserCredentials
	readJSON(t, filepath.Join(data, "subscriber-ibkr-credentials.json"), &creds)
	for _, u := range st.Users {
		if !strings.Contains(out.String(), u.Email) || !strings.Contains(out.String(), u.TOTPSecret) {
			t.Fatalf("the demo did not print %s's login and TOTP secret:\n%s", u.Email, out)
		}
	}
	if !strings.Contains(out.String(), creds.ConsumerKey) {
		t.Fatalf("the demo did not print the simulated consumer key:\n%s", out)
	}
	simBase := regexp.MustCompile(`IBKR simulator: (http://[0-9.:]+)/v1/api`).FindStringSubmatch(out.String())
	if simBase == nil {
		t.Fatalf("no simulator URL printed:\n%s", out)
	}

	sub := signIn(t, base, st.Users[1])
	sub.stepUp(t, st.Users[1]) // saving credentials and raising the position size are sensitive
	sub.do(t, "PUT", "/api/v1/broker/paper", map[string]string{
		"consumer_key": creds.ConsumerKey, "access_token": creds.AccessToken,
		"access_token_secret": creds.AccessTokenSecret, "signature_key_pem": creds.SignaturePrivateKeyPEM,
		"encryption_key_pem": creds.EncryptionPrivateKeyPEM, "dh_params": creds.DHPrimeHex, "account_id": creds.AccountID,
	}, 200, nil)
	var test struct{ OK bool }
	sub.do(t, "POST", "/api/v1/broker/paper/test", nil, 200, &test)
	if !test.OK {
		t.Fatal("Test Connection failed on the demo's own credentials")
	}
	sub.do(t, "PUT", "/api/v1/settings/position-size", map[string]string{"mode": "shares", "value": "3"}, 200, nil)

	var signals struct {
		Items []struct{ ID, Ticker, EntryMode string }
	}
	sub.do(t, "GET", "/api/v1/signals", nil, 200, &signals)
	var signalID string
	modes := map[string]bool{}
	for _, s := range signals.Items {
		modes[s.EntryMode] = true
		if s.Ticker == "AAPL" {
			signalID = s.ID
		}
	}
	if signalID == "" || len(signals.Items) < 3 {
		t.Fatalf("demo signals: %+v", signals.Items)
	}
	var conf struct{ ID, Status string }
	sub.do(t, "POST", "/api/v1/signals/"+signalID+"/confirm", map[string]string{"side": "BUY"}, 201, &conf)
	if conf.Status != "submitted" {
		t.Fatalf("confirmation status = %q, want submitted", conf.Status)
	}

	resp, err := http.Post(simBase[1]+"/sim/auction/open", "application/json", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("opening auction: %v %v", resp, err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(60 * time.Second)
	for conf.Status != "filled" {
		if time.Now().After(deadline) {
			t.Fatalf("the confirmation never became filled (status %q)", conf.Status)
		}
		time.Sleep(250 * time.Millisecond)
		sub.do(t, "GET", "/api/v1/confirmations/"+conf.ID, nil, 200, &conf)
	}

	admin := signIn(t, base, st.Users[0])
	var log struct{ Items []struct{ ID, Status string } }
	admin.do(t, "GET", "/api/v1/admin/confirmations?ticker=AAPL", nil, 200, &log)
	found := false
	for _, c := range log.Items {
		found = found || c.ID == conf.ID && c.Status == "filled"
	}
	if !found {
		t.Fatalf("the admin log lacks the filled confirmation %s: %+v", conf.ID, log.Items)
	}
	sub.do(t, "GET", "/api/v1/admin/confirmations", nil, 403, nil)

	// What happened is visible to the operator too.
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`ordertune_confirmations_total{outcome="submitted"} 1`,
		`ordertune_ibkr_handshakes_total{result="ok"}`,
		`ordertune_ibkr_requests_total{endpoint="/iserver/account/{account}/orders",status="200"}`,
		`ordertune_ibkr_sessions{state=`,
		"ordertune_notification_outbox_events ",
		`ordertune_db_pool_connections{pool="main",state="idle"}`,
		`ordertune_db_pool_empty_acquires_total{pool="account_locks"}`,
		`ordertune_http_request_duration_seconds_count{method="POST",route="/api/v1/signals/:id/confirm",status="201"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(metrics), creds.AccountID) {
		t.Error("/metrics names the account id")
	}
}

type apiClient struct {
	base string
	c    *http.Client
	step int64 // the TOTP step of the code that signed in
}

func signIn(t *testing.T, base string, u demoUser) *apiClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &apiClient{base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	c.do(t, "POST", "/api/v1/auth/login", map[string]string{"email": u.Email, "password": u.Password}, 200, nil)
	now := time.Now()
	code, err := auth.TOTPCode(u.TOTPSecret, now)
	if err != nil {
		t.Fatal(err)
	}
	c.do(t, "POST", "/api/v1/auth/totp", map[string]string{"code": code}, 200, nil)
	c.step = now.Unix() / 30
	return c
}

// stepUp gives the session a fresh second factor for sensitive actions:
// the code of a step after the sign-in's (the replay guard refuses that
// one), waiting for it when needed.
func (c *apiClient) stepUp(t *testing.T, u demoUser) {
	t.Helper()
	if next := time.Unix((c.step+1)*30, 0); time.Now().Before(next) {
		time.Sleep(time.Until(next) + 50*time.Millisecond)
	}
	code, err := auth.TOTPCode(u.TOTPSecret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c.do(t, "POST", "/api/v1/auth/step-up", map[string]string{"code": code}, 200, nil)
}

func (c *apiClient) do(t *testing.T, method, path string, body any, want int, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, r)
	req.Header.Set("Content-Type", "application/json")
	if strings.HasSuffix(path, "/confirm") {
		req.Header.Set("Idempotency-Key", fmt.Sprintf("demo-%d", time.Now().UnixNano()))
	}
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode: %v: %s", method, path, err, b)
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
