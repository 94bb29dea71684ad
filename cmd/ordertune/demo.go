package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mdp/qrterminal/v3"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/config"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/logging"
	"github.com/ordertune/ordertune/internal/market"
	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/localpg"
	"github.com/ordertune/ordertune/internal/seal"
	"github.com/ordertune/ordertune/internal/tick"
	"github.com/ordertune/ordertune/internal/trading"
)

// demoDataDir holds everything the demo keeps between runs: the PostgreSQL
// cluster, the master key, the simulator's consumers and the demo logins.
const demoDataDir = ".data"

// demoState is what the demo remembers between runs (.data/demo.json): the
// logins it created, so a second run prints the same ones.
type demoState struct {
	Users []demoUser `json:"users"`
}

type demoUser struct {
	Email      string `json:"email"`
	Role       string `json:"role"`
	Password   string `json:"password"`
	TOTPSecret string `json:"totp_secret"`
	OTPAuthURI string `json:"otpauth_uri"`
}

func cmdDemo(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet(a, "demo")
	dataDir := fs.String("data", demoDataDir, "folder for the demo's database, keys and logins")
	simAddr := fs.String("sim-addr", "127.0.0.1:0", "address of the built-in IBKR simulator (port 0: any free port)")
	auctionEvery := fs.Duration("auction-every", 3*time.Minute, "run the simulator's opening and closing auctions this often (0: never)")
	quiet := fs.Bool("quiet", false, "print no QR codes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(a.getenv, true)
	if err != nil {
		return err
	}
	if a.getenv("ORDERTUNE_LOG_FORMAT") == "" {
		cfg.LogFormat = "console"
	}
	log := logging.New(a.stderr, cfg.LogLevel, cfg.LogFormat)
	say := func(format string, args ...any) { fmt.Fprintf(a.stdout, format+"\n", args...) }
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return err
	}

	if cfg.MasterKeys == "" {
		if cfg.MasterKeys, err = demoMasterKey(filepath.Join(*dataDir, "master_keys")); err != nil {
			return err
		}
	}

	if cfg.AuditSigningKey == "" {
		if cfg.AuditSigningKey, err = demoAuditKey(filepath.Join(*dataDir, "audit_signing_key")); err != nil {
			return err
		}
		if cfg.AuditCheckpoints == "" {
			cfg.AuditCheckpoints = filepath.Join(*dataDir, "audit-checkpoints.jsonl")
		}
	}

	// The demo's own cluster runs with the two roles of a deployment: the
	// superuser owns the schema and migrates it; the server connects as
	// ordertune_demo, a member of ordertune_app.
	localApp := false
	if cfg.DatabaseURL == "" {
		cluster, err := localpg.Start(ctx, localpg.Options{DataDir: filepath.Join(*dataDir, "postgres"), Log: say})
		if err != nil {
			return err
		}
		defer func() {
			say("stopping PostgreSQL")
			cluster.Stop()
		}()
		if err := ensureDatabase(ctx, cluster.URL("postgres"), "ordertune"); err != nil {
			return err
		}
		cfg.DatabaseURL, cfg.MigrateDatabaseURL, localApp = cluster.URL("ordertune"), cluster.URL("ordertune"), true
	}
	say("applying migrations")
	if err := checkSchema(cfg, true, log); err != nil {
		return err
	}
	if localApp {
		if err := postgres.EnsureAppLogin(ctx, cfg.MigrateDatabaseURL, demoAppRole); err != nil {
			return err
		}
		if cfg.DatabaseURL, err = postgres.WithUser(cfg.MigrateDatabaseURL, demoAppRole); err != nil {
			return err
		}
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	warnErasableAudit(ctx, pool, log)

	// The simulator stands in for IBKR; its consumers persist in a file so
	// credentials saved in Settings → Broker keep working across runs.
	sim := ibkrsim.New(ibkrsim.Config{
		Logger: log.With().Str("component", "ibkrsim").Logger().Level(zerolog.WarnLevel),
		Pacing: ibkrsim.Pacing{PenaltyBox: 30 * time.Second},
	})
	consumersFile := filepath.Join(*dataDir, "sim-consumers.json")
	if _, err := os.Stat(consumersFile); err == nil {
		if err := sim.LoadConsumersFile(consumersFile); err != nil {
			return fmt.Errorf("simulator consumers: %w", err)
		}
	}
	simURL := make(chan string, 1)
	simCtx, stopSim := context.WithCancel(context.WithoutCancel(ctx))
	simDone := make(chan error, 1)
	go func() {
		simDone <- ibkrsim.ListenAndServe(simCtx, *simAddr, sim, func(addr string) { simURL <- "http://" + addr })
	}()
	defer func() { stopSim(); <-simDone }()
	var simBase string
	select {
	case simBase = <-simURL:
	case err := <-simDone:
		return fmt.Errorf("IBKR simulator: %w", err)
	}
	if a.getenv("ORDERTUNE_IBKR_BASE_URL") == "" {
		cfg.IBKRBaseURL = simBase + ibkrsim.APIPrefix
	}

	stopMail, err := demoMail(&cfg, filepath.Join(*dataDir, "mail"), log)
	if err != nil {
		return err
	}
	defer stopMail()

	svc, err := build(cfg, log, pool)
	if err != nil {
		return err
	}
	state, err := seedDemo(ctx, *dataDir, svc, sim)
	if err != nil {
		return fmt.Errorf("seed demo data: %w", err)
	}
	credsFile, err := demoBrokerCredentials(*dataDir, sim, consumersFile)
	if err != nil {
		return fmt.Errorf("simulated IBKR consumer: %w", err)
	}
	if *auctionEvery > 0 {
		go runAuctions(simCtx, sim, *auctionEvery, log)
	}

	err = svc.run(ctx, cfg, log, func(addr string) {
		printDemo(a.stdout, cfg, state, credsFile, simBase, *auctionEvery, *quiet)
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// demoMasterKey reads the demo's master key, creating it on the first run.
func demoMasterKey(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	key, err := seal.GenerateKey("demo1")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("save the demo master key: %w", err)
	}
	return key, nil
}

// demoAppRole is the role the demo's server connects as on its own cluster.
const demoAppRole = "ordertune_demo"

// demoAuditKey reads the demo's audit signing key, creating it on the
// first run.
func demoAuditKey(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	key, _, err := audit.GenerateSigningKey()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("save the demo audit signing key: %w", err)
	}
	return key, nil
}

// seedDemo creates the demo admin and subscriber (2FA on) and today's
// sample signals, once; later runs read the logins back from demo.json.
func seedDemo(ctx context.Context, dir string, svc *services, sim *ibkrsim.Server) (demoState, error) {
	path := filepath.Join(dir, "demo.json")
	var st demoState
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return st, fmt.Errorf("%s: %w", path, err)
		}
	} else {
		var adminID string
		for _, u := range []struct{ email, role string }{
			{"admin@ordertune.demo", "admin"},
			{"subscriber@ordertune.demo", "subscriber"},
		} {
			pw := randomPassword()
			user, enr, err := svc.auth.CreateUserWithTOTP(ctx, auth.NewUser{Email: u.email, Role: auth.Role(u.role), Password: pw}, "")
			if err != nil {
				return st, fmt.Errorf("create %s: %w", u.email, err)
			}
			if u.role == "admin" {
				adminID = user.ID
			}
			st.Users = append(st.Users, demoUser{Email: u.email, Role: u.role, Password: pw, TOTPSecret: enr.Secret, OTPAuthURI: enr.URI})
		}
		if err := seedSignals(ctx, svc.trading, adminID, sim); err != nil {
			return st, err
		}
		b, _ := json.MarshalIndent(st, "", "  ")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return st, err
		}
	}
	return st, nil
}

// seedSignals publishes today's sample signals, one per entry mode.
func seedSignals(ctx context.Context, svc *trading.Service, adminID string, sim *ibkrsim.Server) error {
	clock := market.Default()
	today := clock.Now().In(clock.Location()).Format(time.DateOnly)
	// return_2d is a fraction (-0.0241 is -2.41 %), as the API carries it.
	samples := []struct {
		ticker, strategy, mode, rsi, ret string
	}{
		{"AAPL", "I", "next_open_market", "6.2", "-0.0241"},
		{"MSFT", "II", "next_open_limit", "4.8", "-0.0305"},
		{"NVDA", "III", "signal_close", "9.7", "-0.0412"},
	}
	for _, s := range samples {
		sec, ok := sim.Security(s.ticker)
		if !ok {
			return fmt.Errorf("simulator has no %s", s.ticker)
		}
		n := trading.NewSignal{
			Ticker: s.ticker, Strategy: s.strategy, Kind: "entry",
			SignalDate: today, EntryDate: entryDate(clock, s.mode),
			RefClose: fmt.Sprintf("%.2f", sec.RefPrice), RSI2: s.rsi, Return2D: s.ret,
			EntryMode: s.mode,
		}
		if s.mode == "next_open_limit" {
			// Above the simulated open, so the demo's order fills.
			limit := fmt.Sprintf("%.2f", max(sec.OpenPrice, sec.RefPrice)*1.01)
			n.LimitPrice = &limit
		}
		if _, err := svc.CreateSignal(ctx, adminID, n); err != nil {
			return fmt.Errorf("publish %s: %w", s.ticker, err)
		}
	}
	return nil
}

// demoBrokerCredentials registers a simulated IBKR consumer for the demo
// subscriber once and keeps its credentials FILE under the data folder.
func demoBrokerCredentials(dir string, sim *ibkrsim.Server, consumersFile string) (string, error) {
	path := filepath.Join(dir, "subscriber-ibkr-credentials.json")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	n, err := rand.Int(rand.Reader, big.NewInt(9_000_000))
	if err != nil {
		return "", err
	}
	consumer, creds, err := ibkrsim.Register(ibkrsim.RegisterOptions{AccountID: fmt.Sprintf("DU%07d", 1_000_000+n.Int64())})
	if err != nil {
		return "", err
	}
	if err := sim.AddConsumer(consumer); err != nil {
		return "", err
	}
	if err := ibkrsim.AppendConsumersFile(consumersFile, consumer); err != nil {
		return "", err
	}
	b, _ := json.MarshalIndent(creds, "", "  ")
	if err := ibkrsim.WriteFileAtomic(path, b, 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// runAuctions runs the simulator's opening and closing auctions every
// period, so confirmed demo orders fill without anyone's help.
func runAuctions(ctx context.Context, sim *ibkrsim.Server, period time.Duration, log zerolog.Logger) {
	tick.Every(ctx, period, func() {
		open := sim.RunAuction(true, nil)
		closing := sim.RunAuction(false, nil)
		log.Info().Interface("open", open).Interface("close", closing).Msg("demo auctions ran")
	})
}

func printDemo(w io.Writer, cfg config.Config, st demoState, credsFile, simBase string, auctions time.Duration, quiet bool) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("")
	p("Ordertune demo is running at %s  (Ctrl-C stops it)", cfg.PublicURL)
	p("  health: %s/healthz   readiness: %s/readyz   metrics: %s/metrics", cfg.PublicURL, cfg.PublicURL, cfg.PublicURL)
	p("")
	for _, u := range st.Users {
		p("%s  %s", strings.ToUpper(u.Role), u.Email)
		p("  password:    %s", u.Password)
		p("  TOTP secret: %s", u.TOTPSecret)
		p("  otpauth URI: %s", u.OTPAuthURI)
		if code, err := auth.TOTPCode(u.TOTPSecret, time.Now()); err == nil {
			p("  current code: %s (changes every 30 s; add the secret to an authenticator app)", code)
		}
		if !quiet {
			qrterminal.GenerateWithConfig(u.OTPAuthURI, qrterminal.Config{
				Level: qrterminal.L, Writer: w, HalfBlocks: true,
				BlackChar: qrterminal.BLACK_BLACK, WhiteChar: qrterminal.WHITE_WHITE,
				BlackWhiteChar: qrterminal.BLACK_WHITE, WhiteBlackChar: qrterminal.WHITE_BLACK, QuietZone: 1,
			})
		}
		p("")
	}
	if b, err := os.ReadFile(credsFile); err == nil {
		var c ibkrsim.UserCredentials
		if json.Unmarshal(b, &c) == nil {
			p("Simulated IBKR paper account for the subscriber (Settings → Broker → paper):")
			p("  consumer key: %s   access token: %s   account: %s", c.ConsumerKey, c.AccessToken, c.AccountID)
			p("  all fields, including the two private keys and the DH prime: %s", credsFile)
		}
	}
	p("IBKR simulator: %s%s (control: %s/sim/orders, POST %s/sim/auction/open)", simBase, ibkrsim.APIPrefix, simBase, simBase)
	if auctions > 0 {
		p("Auctions run every %s, so confirmed orders fill on their own.", auctions)
	}
	if strings.HasPrefix(cfg.SMTPURL, "smtp://127.0.0.1:") {
		p("E-mails the demo sends are kept in %s (one .eml file each) and logged.", filepath.Join(demoDataDir, "mail"))
	}
	p("Webhooks may target local addresses (ORDERTUNE_WEBHOOK_ALLOW_PRIVATE is on in the demo).")
	p("")
}

func randomPassword() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 16)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}

// ensureDatabase creates database name on the cluster at adminURL unless it
// exists, so a second demo run reuses the first one's data.
func ensureDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to local PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return fmt.Errorf("create database %s: %w", name, err)
		}
	}
	return nil
}

// entryDate is the trading day of the next auction an entry mode's order
// can still make: confirmations close at its cut-off.
func entryDate(clock *market.Clock, mode string) string {
	a := market.Open
	if mode == trading.SignalClose {
		a = market.Close
	}
	return clock.Cutoff(a, clock.Now()).In(clock.Location()).Format(time.DateOnly)
}
