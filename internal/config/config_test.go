package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/market"
)

func env(m map[string]string) Getenv { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.PublicURL != "http://127.0.0.1:8080" || c.Signup != "closed" ||
		c.IBKRBaseURL != "https://api.ibkr.com/v1/api" || c.LogFormat != "json" {
		t.Errorf("unexpected defaults: %+v", c)
	}
	if c.SecureCookies() {
		t.Error("http public URL must not ask for secure cookies")
	}
	if c.AuditCheckpointEvery != 100 || c.AuditCheckpointInterval != time.Minute || c.AuditSigningKey != "" {
		t.Errorf("audit checkpoint defaults: every %d, interval %s", c.AuditCheckpointEvery, c.AuditCheckpointInterval)
	}
	c.DatabaseURL = "postgres://app@db/o"
	if c.MigrateURL() != c.DatabaseURL {
		t.Errorf("MigrateURL = %q, want DATABASE_URL when ORDERTUNE_MIGRATE_DATABASE_URL is unset", c.MigrateURL())
	}
	if c.PprofAddr != "" {
		t.Errorf("PprofAddr = %q by default, want none", c.PprofAddr)
	}
	if c.OrderLockConns != 32 {
		t.Errorf("OrderLockConns = %d by default, want 32", c.OrderLockConns)
	}
	if l, err := Load(env(map[string]string{"ORDERTUNE_ORDER_LOCK_CONNS": "8"}), false); err != nil || l.OrderLockConns != 8 {
		t.Errorf("ORDERTUNE_ORDER_LOCK_CONNS=8: %d, %v", l.OrderLockConns, err)
	}
	for _, ok := range []string{"127.0.0.1:6060", "[::1]:6060", "localhost:6060"} {
		if p, err := Load(env(map[string]string{"ORDERTUNE_PPROF_ADDR": ok}), false); err != nil || p.PprofAddr != ok {
			t.Errorf("ORDERTUNE_PPROF_ADDR=%s: %q, %v", ok, p.PprofAddr, err)
		}
	}
	d, _ := Load(env(nil), true)
	if d.Signup != "open" {
		t.Errorf("demo signup = %q, want open", d.Signup)
	}
}

func TestReconciliationAndHandshakeTimings(t *testing.T) {
	c, err := Load(env(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	if c.PendingGrace != 45*time.Second || c.OutcomeUnknownAfter != 10*time.Minute || c.HandshakeFailureBackoff != 5*time.Second {
		t.Errorf("defaults: pending grace %s, outcome unknown after %s, handshake failure backoff %s; want 45s, 10m, 5s",
			c.PendingGrace, c.OutcomeUnknownAfter, c.HandshakeFailureBackoff)
	}
	c, err = Load(env(map[string]string{"ORDERTUNE_PENDING_GRACE": "40s", "ORDERTUNE_OUTCOME_UNKNOWN_AFTER": "1h",
		"ORDERTUNE_HANDSHAKE_FAILURE_BACKOFF": "2s"}), false)
	if err != nil || c.PendingGrace != 40*time.Second || c.OutcomeUnknownAfter != time.Hour || c.HandshakeFailureBackoff != 2*time.Second {
		t.Errorf("set: %s, %s, %s, %v; want 40s, 1h, 2s", c.PendingGrace, c.OutcomeUnknownAfter, c.HandshakeFailureBackoff, err)
	}
	_, err = Load(env(map[string]string{"ORDERTUNE_PENDING_GRACE": "0s", "ORDERTUNE_OUTCOME_UNKNOWN_AFTER": "soon",
		"ORDERTUNE_HANDSHAKE_FAILURE_BACKOFF": "-1s"}), false)
	for _, name := range []string{"ORDERTUNE_PENDING_GRACE", "ORDERTUNE_OUTCOME_UNKNOWN_AFTER", "ORDERTUNE_HANDSHAKE_FAILURE_BACKOFF"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}

func TestSecretFromFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(f, []byte("k1:AAAA\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{"ORDERTUNE_MASTER_KEYS_FILE": f}), false)
	if err != nil {
		t.Fatal(err)
	}
	if c.MasterKeys != "k1:AAAA" {
		t.Errorf("MasterKeys = %q", c.MasterKeys)
	}
	_, err = Load(env(map[string]string{"ORDERTUNE_MASTER_KEYS_FILE": f, "ORDERTUNE_MASTER_KEYS": "x"}), false)
	if err == nil {
		t.Error("both NAME and NAME_FILE set: want an error")
	}
	_, err = Load(env(map[string]string{"DATABASE_URL_FILE": filepath.Join(t.TempDir(), "missing")}), false)
	if err == nil {
		t.Error("missing secret file: want an error")
	}
}

func TestInvalidValuesAllReported(t *testing.T) {
	_, err := Load(env(map[string]string{
		"ORDERTUNE_SIGNUP":           "maybe",
		"ORDERTUNE_LOG_FORMAT":       "xml",
		"ORDERTUNE_PUBLIC_URL":       "ftp://x",
		"ORDERTUNE_SESSION_IDLE":     "soon",
		"ORDERTUNE_CUTOFF_OPG":       "9:28",
		"ORDERTUNE_IBKR_MAINTENANCE": "nightly",
		"ORDERTUNE_PPROF_ADDR":       "0.0.0.0:6060",
		"ORDERTUNE_ORDER_LOCK_CONNS": "0",

		"ORDERTUNE_AUDIT_CHECKPOINT_EVERY":    "0",
		"ORDERTUNE_AUDIT_CHECKPOINT_INTERVAL": "-1m",
	}), false)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"ORDERTUNE_SIGNUP", "ORDERTUNE_LOG_FORMAT", "ORDERTUNE_PUBLIC_URL", "ORDERTUNE_SESSION_IDLE",
		"ORDERTUNE_CUTOFF_OPG", "ORDERTUNE_IBKR_MAINTENANCE", "ORDERTUNE_PPROF_ADDR", "ORDERTUNE_ORDER_LOCK_CONNS",
		"ORDERTUNE_AUDIT_CHECKPOINT_EVERY", "ORDERTUNE_AUDIT_CHECKPOINT_INTERVAL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestLogRedactsSecrets(t *testing.T) {
	c, err := Load(env(map[string]string{
		"DATABASE_URL":                   "postgres://app:hunter2secret@db:5432/ordertune?sslmode=disable&password=other2secret",
		"ORDERTUNE_MIGRATE_DATABASE_URL": "postgres://owner:owner3secret@db:5432/ordertune",
		"ORDERTUNE_MASTER_KEYS":          "k1:c2VjcmV0c2VjcmV0c2VjcmV0",
		"ORDERTUNE_AUDIT_SIGNING_KEY":    "YXVkaXRzaWduaW5nc2VjcmV0",
		"ORDERTUNE_PUBLIC_URL":           "https://ordertune.example",
	}), false)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	l := zerolog.New(&buf)
	l.Info().EmbedObject(c).Msg("config")
	out := buf.String()
	for _, secret := range []string{"hunter2secret", "other2secret", "owner3secret", "c2VjcmV0c2VjcmV0c2VjcmV0", "YXVkaXRzaWduaW5nc2VjcmV0"} {
		if strings.Contains(out, secret) {
			t.Errorf("log line leaks %q: %s", secret, out)
		}
	}
	if !strings.Contains(out, "db:5432") || !c.SecureCookies() {
		t.Errorf("log line lost the non-secret parts: %s", out)
	}
}

func TestMarketClock(t *testing.T) {
	c, err := Load(env(map[string]string{
		"ORDERTUNE_CUTOFF_OPG":       "09:25",
		"ORDERTUNE_CUTOFF_MOC":       "15:45",
		"ORDERTUNE_IBKR_MAINTENANCE": "daily 00:00-01:00",
	}), false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Market.OPGCutoff != 9*time.Hour+25*time.Minute || c.Market.MOCCutoff != 15*time.Hour+45*time.Minute {
		t.Errorf("cut-offs %v %v", c.Market.OPGCutoff, c.Market.MOCCutoff)
	}
	if got := market.FormatWindows(c.Market.Maintenance); got != "daily 00:00-01:00" {
		t.Errorf("maintenance %q", got)
	}
	if _, err := Load(env(map[string]string{"ORDERTUNE_CUTOFF_MOC": "16:30"}), false); err == nil || !strings.Contains(err.Error(), "ORDERTUNE_CUTOFF_MOC") {
		t.Errorf("a closing cut-off after the close: %v", err)
	}
}
