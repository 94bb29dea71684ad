package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/config"
	"github.com/ordertune/ordertune/internal/notify/mailcatch"
	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
)

// mailEnv is one Ordertune, wired as serve wires it, whose e-mail goes to
// an SMTP server in the test (STARTTLS, AUTH PLAIN).
type mailEnv struct {
	base string
	vars map[string]string
	mail *mailcatch.Server
	pool *pgxpool.Pool
	svc  *services
	logs *syncBuffer
}

// startMailEnv starts the server with the environment vars, which extra
// extends.
func startMailEnv(t *testing.T, extra map[string]string) *mailEnv {
	t.Helper()
	e := &mailEnv{logs: &syncBuffer{}}
	mc, err := mailcatch.Start(mailcatch.Options{User: "mailer", Password: "smtp-secret-7"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	e.mail = mc
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.base = "http://" + l.Addr().String()
	key := make([]byte, 32)
	rand.Read(key)
	e.vars = map[string]string{
		"DATABASE_URL":                    pgtest.DB(t),
		"ORDERTUNE_ADDR":                  l.Addr().String(),
		"ORDERTUNE_PUBLIC_URL":            e.base,
		"ORDERTUNE_MASTER_KEYS":           "k1:" + base64.StdEncoding.EncodeToString(key),
		"ORDERTUNE_SMTP_URL":              "smtp://mailer:smtp-secret-7@" + mc.Addr(),
		"ORDERTUNE_MAIL_FROM":             "Ordertune <alerts@ordertune.test>",
		"ORDERTUNE_WEBHOOK_ALLOW_PRIVATE": "true",
	}
	for k, v := range extra {
		e.vars[k] = v
	}
	cfg, err := config.Load(func(k string) string { return e.vars[k] }, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MailTLS = mc.ClientTLS()
	pool, err := postgres.Open(t.Context(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e.pool = pool
	svc, err := build(cfg, zerolog.New(e.logs), pool)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	wctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, w := range svc.workers {
		wg.Add(1)
		go func() { defer wg.Done(); w(wctx) }()
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: svc.http.Handler()}}
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		stop()
		wg.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", e.logs)
		}
	})
	return e
}

// user creates an account with TOTP on and returns its login.
func (e *mailEnv) user(t *testing.T, email, password string) demoUser {
	t.Helper()
	u, en, err := e.svc.auth.CreateUserWithTOTP(t.Context(), auth.NewUser{Email: email, Role: auth.Subscriber, Password: password}, "")
	if err != nil {
		t.Fatal(err)
	}
	_ = u
	return demoUser{Email: email, Password: password, TOTPSecret: en.Secret}
}

// anonymous is a client without a session.
func (e *mailEnv) anonymous() *apiClient {
	jar, _ := cookiejar.New(nil)
	return &apiClient{base: e.base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// mailsWith waits until n e-mails whose subject contains subject arrived
// and returns them.
func (e *mailEnv) mailsWith(t *testing.T, subject string, n int) []mailcatch.Message {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got []mailcatch.Message
		for _, m := range e.mail.Messages() {
			if strings.Contains(m.Header("Subject"), subject) {
				got = append(got, m)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d e-mails %q after 30 s, want %d", len(got), subject, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
