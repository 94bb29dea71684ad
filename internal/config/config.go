// Package config reads Ordertune's configuration from the environment into one
// struct. Secrets may also come from files (NAME_FILE), the usual way to hand
// them to containers and systemd units without putting them in the environment.
package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/market"
)

// Config is the whole of Ordertune's runtime configuration.
type Config struct {
	Addr        string // ORDERTUNE_ADDR
	PublicURL   string // ORDERTUNE_PUBLIC_URL
	DatabaseURL string // DATABASE_URL (secret: may hold a password)
	// MigrateDatabaseURL connects as the schema's owner to run migrations
	// (migrate, serve --migrate); "" means DatabaseURL. DatabaseURL is the
	// server's restricted role (see deploy/README.md).
	MigrateDatabaseURL string // ORDERTUNE_MIGRATE_DATABASE_URL (secret)
	MasterKeys         string // ORDERTUNE_MASTER_KEYS (secret)
	IBKRBaseURL        string // ORDERTUNE_IBKR_BASE_URL
	Signup             string // ORDERTUNE_SIGNUP: open or closed
	LogLevel           string // ORDERTUNE_LOG_LEVEL
	LogFormat          string // ORDERTUNE_LOG_FORMAT: json or console

	// IBKRPassthroughRoutes is the operator's allowlist of read-only IBKR
	// routes forwarded per tenant (comma-separated); "" means the default.
	IBKRPassthroughRoutes string // ORDERTUNE_IBKR_PASSTHROUGH_ROUTES

	// SMTPURL is where e-mail goes: smtp://user:pass@host:587 (STARTTLS)
	// or smtps://… (implicit TLS); "" sends no e-mail.
	SMTPURL  string // ORDERTUNE_SMTP_URL (secret: may hold a password)
	MailFrom string // ORDERTUNE_MAIL_FROM
	// WebhookAllowPrivate lets webhooks go to http:// and to private,
	// loopback and link-local addresses (tests and the demo).
	WebhookAllowPrivate bool // ORDERTUNE_WEBHOOK_ALLOW_PRIVATE
	// NotifyRescueAfter is how long a delivery that was running when its
	// process died waits before any replica takes it again.
	NotifyRescueAfter time.Duration // ORDERTUNE_NOTIFY_RESCUE_AFTER
	// MailTLS, when set, is the TLS configuration for the SMTP server; it
	// is not read from the environment (the demo trusts its own catcher).
	MailTLS *tls.Config

	// The platform's risk ceilings (decimal strings; "" means the default
	// of package risk). Admin → Risk overrides them; risk.New checks them.
	MaxOrderValue     string // ORDERTUNE_MAX_ORDER_VALUE
	MaxSharesPerOrder string // ORDERTUNE_MAX_SHARES_PER_ORDER
	MaxOrdersPerDay   string // ORDERTUNE_MAX_ORDERS_PER_DAY
	MaxDailyValue     string // ORDERTUNE_MAX_DAILY_VALUE

	SessionIdle    time.Duration // ORDERTUNE_SESSION_IDLE
	SessionMaxAge  time.Duration // ORDERTUNE_SESSION_MAX_AGE
	ShutdownPeriod time.Duration // ORDERTUNE_SHUTDOWN_TIMEOUT

	// AuditSigningKey signs checkpoints of the audit chain head (base64
	// Ed25519 seed); "" turns checkpoints off.
	AuditSigningKey string // ORDERTUNE_AUDIT_SIGNING_KEY (secret)
	// AuditCheckpoints is the file checkpoints are appended to; "" logs
	// them only.
	AuditCheckpoints        string        // ORDERTUNE_AUDIT_CHECKPOINTS
	AuditCheckpointEvery    int64         // ORDERTUNE_AUDIT_CHECKPOINT_EVERY: entries
	AuditCheckpointInterval time.Duration // ORDERTUNE_AUDIT_CHECKPOINT_INTERVAL

	// PendingGrace is how old a pending confirmation must be before
	// reconciliation takes it for one whose request died (a crash).
	PendingGrace time.Duration // ORDERTUNE_PENDING_GRACE
	// OutcomeUnknownAfter is how long an order may go unfound at IBKR
	// before its confirmation tells the user to check the IBKR account.
	OutcomeUnknownAfter time.Duration // ORDERTUNE_OUTCOME_UNKNOWN_AFTER
	// HandshakeFailureBackoff is how long a handshake IBKR refused is
	// remembered before the next request tries again; one that did not
	// reach IBKR is retried at once.
	HandshakeFailureBackoff time.Duration // ORDERTUNE_HANDSHAKE_FAILURE_BACKOFF
	// InternalURL is where the other replicas reach this one to forward a
	// tenant's requests to the owner of its IBKR session; "" means
	// http:// + Addr (with the port actually bound when Addr's is 0).
	InternalURL string // ORDERTUNE_INTERNAL_URL
	// LeaseTTL is how long a tenant session lease outlives its owner's
	// last renewal: the longest a dead replica's tenants wait (at most 15 s).
	LeaseTTL time.Duration // ORDERTUNE_LEASE_TTL
	// OrderLockConns is how many database connections hold the
	// per-account order locks: all made at start, kept open and readied
	// for an order's statements (1 to 256).
	OrderLockConns int // ORDERTUNE_ORDER_LOCK_CONNS
	// PprofAddr is a loopback address serving Go's profiler
	// (/debug/pprof/) for a profile of a running server; "" (the default)
	// serves none. Loopback only: a profile shows what the process does.
	PprofAddr string // ORDERTUNE_PPROF_ADDR
	// Market is the exchange clock's configuration: the auction cut-offs
	// (ORDERTUNE_CUTOFF_OPG, ORDERTUNE_CUTOFF_MOC, as HH:MM New York time)
	// and IBKR's restart windows (ORDERTUNE_IBKR_MAINTENANCE).
	Market market.Config
}

// MigrateURL is the URL migrations run with: MigrateDatabaseURL, else
// DatabaseURL.
func (c Config) MigrateURL() string {
	if c.MigrateDatabaseURL != "" {
		return c.MigrateDatabaseURL
	}
	return c.DatabaseURL
}

// Getenv is the signature of os.Getenv; tests pass their own.
type Getenv func(string) string

// isSecret reports whether the variable may also be read from NAME_FILE; its
// value is never logged.
func isSecret(name string) bool {
	switch name {
	case "DATABASE_URL", "ORDERTUNE_MIGRATE_DATABASE_URL", "ORDERTUNE_MASTER_KEYS", "ORDERTUNE_AUDIT_SIGNING_KEY", "ORDERTUNE_SMTP_URL":
		return true
	}
	return false
}

// Load reads the configuration from getenv, applying defaults for demo or
// production use. It reports every invalid variable at once.
func Load(getenv Getenv, demo bool) (Config, error) {
	var problems []string
	get := func(name, def string) string {
		v := strings.TrimSpace(getenv(name))
		if isSecret(name) {
			if file := getenv(name + "_FILE"); file != "" {
				if v != "" {
					problems = append(problems, fmt.Sprintf("%s and %s_FILE are both set; set one", name, name))
				}
				b, err := os.ReadFile(file)
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s_FILE: %v", name, err))
				}
				v = strings.TrimSpace(string(b))
			}
		}
		if v == "" {
			return def
		}
		return v
	}
	// durationOf reads name with parse; unset is def, and a value parse
	// refuses is a problem, want saying what fits.
	durationOf := func(name string, def time.Duration, want string, parse func(string) (time.Duration, bool)) time.Duration {
		s := get(name, "")
		if s == "" {
			return def
		}
		d, ok := parse(s)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s=%q: want %s", name, s, want))
			return def
		}
		return d
	}
	duration := func(name string, def time.Duration) time.Duration {
		return durationOf(name, def, "a positive duration such as 30m", func(s string) (time.Duration, bool) {
			d, err := time.ParseDuration(s)
			return d, err == nil && d > 0
		})
	}
	timeOfDay := func(name string) time.Duration {
		return durationOf(name, 0, "a time of day in New York such as 09:28", func(s string) (time.Duration, bool) {
			t, err := time.Parse("15:04", s)
			return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, err == nil && len(s) == 5
		})
	}

	signupDefault := "closed"
	if demo {
		signupDefault = "open"
	}
	c := Config{
		Addr:                  get("ORDERTUNE_ADDR", "127.0.0.1:8080"),
		DatabaseURL:           get("DATABASE_URL", ""),
		MasterKeys:            get("ORDERTUNE_MASTER_KEYS", ""),
		IBKRBaseURL:           strings.TrimRight(get("ORDERTUNE_IBKR_BASE_URL", "https://api.ibkr.com/v1/api"), "/"),
		Signup:                get("ORDERTUNE_SIGNUP", signupDefault),
		IBKRPassthroughRoutes: get("ORDERTUNE_IBKR_PASSTHROUGH_ROUTES", ""),
		LogLevel:              get("ORDERTUNE_LOG_LEVEL", "info"),
		LogFormat:             get("ORDERTUNE_LOG_FORMAT", "json"),
		MaxOrderValue:         get("ORDERTUNE_MAX_ORDER_VALUE", ""),
		MaxSharesPerOrder:     get("ORDERTUNE_MAX_SHARES_PER_ORDER", ""),
		MaxOrdersPerDay:       get("ORDERTUNE_MAX_ORDERS_PER_DAY", ""),
		MaxDailyValue:         get("ORDERTUNE_MAX_DAILY_VALUE", ""),
		SessionIdle:           duration("ORDERTUNE_SESSION_IDLE", 30*time.Minute),
		SessionMaxAge:         duration("ORDERTUNE_SESSION_MAX_AGE", 12*time.Hour),
		ShutdownPeriod:        duration("ORDERTUNE_SHUTDOWN_TIMEOUT", 15*time.Second),
		SMTPURL:               get("ORDERTUNE_SMTP_URL", ""),
		MailFrom:              get("ORDERTUNE_MAIL_FROM", ""),

		PendingGrace:            duration("ORDERTUNE_PENDING_GRACE", 45*time.Second),
		OutcomeUnknownAfter:     duration("ORDERTUNE_OUTCOME_UNKNOWN_AFTER", 10*time.Minute),
		HandshakeFailureBackoff: duration("ORDERTUNE_HANDSHAKE_FAILURE_BACKOFF", 5*time.Second),
		NotifyRescueAfter:       duration("ORDERTUNE_NOTIFY_RESCUE_AFTER", 5*time.Minute),
		MigrateDatabaseURL:      get("ORDERTUNE_MIGRATE_DATABASE_URL", ""),
		AuditSigningKey:         get("ORDERTUNE_AUDIT_SIGNING_KEY", ""),
		AuditCheckpoints:        get("ORDERTUNE_AUDIT_CHECKPOINTS", ""),
		AuditCheckpointInterval: duration("ORDERTUNE_AUDIT_CHECKPOINT_INTERVAL", time.Minute),
	}
	c.AuditCheckpointEvery = 100
	if v := get("ORDERTUNE_AUDIT_CHECKPOINT_EVERY", ""); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			problems = append(problems, fmt.Sprintf("ORDERTUNE_AUDIT_CHECKPOINT_EVERY=%q: want a positive number of entries", v))
		} else {
			c.AuditCheckpointEvery = n
		}
	}
	c.OrderLockConns = 32
	if v := get("ORDERTUNE_ORDER_LOCK_CONNS", ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 256 {
			problems = append(problems, fmt.Sprintf("ORDERTUNE_ORDER_LOCK_CONNS=%q: want 1 to 256 connections", v))
		} else {
			c.OrderLockConns = n
		}
	}
	switch v := get("ORDERTUNE_WEBHOOK_ALLOW_PRIVATE", "false"); v {
	case "true", "1":
		c.WebhookAllowPrivate = true
	case "false", "0":
	default:
		problems = append(problems, fmt.Sprintf("ORDERTUNE_WEBHOOK_ALLOW_PRIVATE=%q: want true or false", v))
	}
	if c.SMTPURL != "" {
		if u, err := url.Parse(c.SMTPURL); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
			problems = append(problems, "ORDERTUNE_SMTP_URL: want smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465")
		}
		if c.MailFrom == "" {
			problems = append(problems, "ORDERTUNE_MAIL_FROM: set the sender address when ORDERTUNE_SMTP_URL is set")
		}
	}
	c.PublicURL = strings.TrimRight(get("ORDERTUNE_PUBLIC_URL", "http://"+c.Addr), "/")
	c.InternalURL = strings.TrimRight(get("ORDERTUNE_INTERNAL_URL", ""), "/")
	if c.InternalURL != "" {
		if u, err := url.Parse(c.InternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			problems = append(problems, fmt.Sprintf("ORDERTUNE_INTERNAL_URL=%q: want http://host:port or https://host:port, no path", c.InternalURL))
		}
	}
	c.LeaseTTL = duration("ORDERTUNE_LEASE_TTL", 15*time.Second)
	if c.LeaseTTL < time.Second || c.LeaseTTL > 15*time.Second {
		problems = append(problems, fmt.Sprintf("ORDERTUNE_LEASE_TTL=%s: want 1s to 15s", c.LeaseTTL))
	}
	c.PprofAddr = get("ORDERTUNE_PPROF_ADDR", "")
	if c.PprofAddr != "" {
		host, _, err := net.SplitHostPort(c.PprofAddr)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			problems = append(problems, fmt.Sprintf("ORDERTUNE_PPROF_ADDR=%q: want a loopback host:port (127.0.0.1:6060)", c.PprofAddr))
		}
	}
	c.Market.OPGCutoff = timeOfDay("ORDERTUNE_CUTOFF_OPG")
	c.Market.MOCCutoff = timeOfDay("ORDERTUNE_CUTOFF_MOC")
	if demo {
		// The demo's IBKR is the simulator, which restarts only when told.
		c.Market.Maintenance = []market.Window{}
	}
	if s := get("ORDERTUNE_IBKR_MAINTENANCE", ""); s != "" {
		ws, err := market.ParseWindows(s)
		if err != nil {
			problems = append(problems, fmt.Sprintf("ORDERTUNE_IBKR_MAINTENANCE: %v", err))
		}
		c.Market.Maintenance = ws
	}
	if _, err := market.New(c.Market); err != nil {
		problems = append(problems, fmt.Sprintf("ORDERTUNE_CUTOFF_OPG, ORDERTUNE_CUTOFF_MOC: %v", err))
	}

	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems = append(problems, fmt.Sprintf("ORDERTUNE_PUBLIC_URL=%q: want an http:// or https:// URL", c.PublicURL))
	}
	if u, err := url.Parse(c.IBKRBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems = append(problems, fmt.Sprintf("ORDERTUNE_IBKR_BASE_URL=%q: want an http:// or https:// URL", c.IBKRBaseURL))
	}
	if c.Signup != "open" && c.Signup != "closed" {
		problems = append(problems, fmt.Sprintf("ORDERTUNE_SIGNUP=%q: want open or closed", c.Signup))
	}
	if _, err := zerolog.ParseLevel(c.LogLevel); err != nil || c.LogLevel == "" {
		problems = append(problems, fmt.Sprintf("ORDERTUNE_LOG_LEVEL=%q: want trace, debug, info, warn or error", c.LogLevel))
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		problems = append(problems, fmt.Sprintf("ORDERTUNE_LOG_FORMAT=%q: want json or console", c.LogFormat))
	}
	if len(problems) > 0 {
		return c, fmt.Errorf("configuration: %s", strings.Join(problems, "; "))
	}
	return c, nil
}

// SecureCookies reports whether cookies must carry the Secure flag and the
// __Host- prefix: whenever users reach Ordertune over https.
func (c Config) SecureCookies() bool { return strings.HasPrefix(c.PublicURL, "https://") }

// MarshalZerologObject logs the configuration with secrets redacted, so the
// start-up line shows what the process runs with and nothing it must keep.
func (c Config) MarshalZerologObject(e *zerolog.Event) {
	e.Str("addr", c.Addr).
		Str("public_url", c.PublicURL).
		Str("internal_url", c.InternalURL).
		Dur("lease_ttl", c.LeaseTTL).
		Str("pprof_addr", c.PprofAddr).
		Str("database_url", RedactURL(c.DatabaseURL)).
		Str("migrate_database_url", RedactURL(c.MigrateDatabaseURL)).
		Bool("master_keys_set", c.MasterKeys != "").
		Bool("audit_signing_key_set", c.AuditSigningKey != "").
		Str("audit_checkpoints", c.AuditCheckpoints).
		Int64("audit_checkpoint_every", c.AuditCheckpointEvery).
		Dur("audit_checkpoint_interval", c.AuditCheckpointInterval).
		Str("ibkr_base_url", c.IBKRBaseURL).
		Str("signup", c.Signup).
		Str("ibkr_passthrough_routes", c.IBKRPassthroughRoutes).
		Str("log_level", c.LogLevel).
		Str("log_format", c.LogFormat).
		Str("smtp_url", RedactURL(c.SMTPURL)).
		Str("mail_from", c.MailFrom).
		Bool("webhook_allow_private", c.WebhookAllowPrivate).
		Dur("session_idle", c.SessionIdle).
		Dur("session_max_age", c.SessionMaxAge).
		Dur("pending_grace", c.PendingGrace).
		Dur("outcome_unknown_after", c.OutcomeUnknownAfter).
		Dur("handshake_failure_backoff", c.HandshakeFailureBackoff).
		Dur("notify_rescue_after", c.NotifyRescueAfter).
		Str("ibkr_maintenance", market.FormatWindows(c.Market.Maintenance))
}

// RedactURL returns a connection URL with its password, and any password
// query parameter, replaced by "redacted".
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable, redacted)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "redacted")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
