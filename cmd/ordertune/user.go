package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/config"
	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/logging"
	"github.com/ordertune/ordertune/internal/notify"
	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/seal"
)

// newAuth builds the account service from the configuration. ring seals
// TOTP secrets; `user create` has none to seal and passes nil. ns, when
// set, is told of security events in their transactions.
func newAuth(cfg config.Config, log zerolog.Logger, pool *pgxpool.Pool, ring *seal.Ring, ns *notify.Service) (*auth.Service, error) {
	ac := auth.Config{
		Pool:          pool,
		Log:           log,
		SessionIdle:   cfg.SessionIdle,
		SessionMaxAge: cfg.SessionMaxAge,
		SignupOpen:    cfg.Signup == "open",
	}
	if ring != nil { // a nil *Ring in the interface would not compare nil
		ac.Sealer = ring
	}
	if ns != nil {
		ac.OnSecurityEvent = func(ctx context.Context, tx pgx.Tx, userID, eventType string, data map[string]any) error {
			_, err := ns.Enqueue(ctx, tx, notify.Event{UserID: userID, Type: eventType, Data: data})
			return err
		}
		ac.OnPasswordReset = ns.EnqueuePasswordReset
	}
	return auth.New(ac)
}

// authSweeper is the worker that clears expired sessions and spent
// throttle rows; expired ones are refused anyway, so the interval only
// bounds how much dead data the tables keep.
func authSweeper(svc *auth.Service) func(ctx context.Context) {
	return func(ctx context.Context) { svc.RunSweeper(ctx, 10*time.Minute) }
}

func cmdUser(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New(userUsage)
	}
	fs := newFlagSet(a, "user create")
	email := fs.String("email", "", "the account's email address")
	role := fs.String("role", "", "admin or subscriber")
	pwFile := fs.String("password-file", "", "read the password from the first line of FILE instead of stdin (containers, scripts)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *email == "" || *role == "" || fs.NArg() > 0 {
		return errors.New(userUsage)
	}
	in, source := a.stdin, "stdin"
	if *pwFile != "" {
		f, err := os.Open(*pwFile)
		if err != nil {
			return fmt.Errorf("--password-file: %w", err)
		}
		defer f.Close()
		in, source = f, *pwFile
	}
	pw, err := readPassword(in, source)
	if err != nil {
		return err
	}
	// Check what needs no database first, so a typo fails at once.
	if !auth.Role(*role).Valid() {
		return fmt.Errorf("--role %q: want admin or subscriber", *role)
	}
	if err := auth.CheckPassword("password", pw); err != nil {
		return fmt.Errorf("password in %s: %s", source, userMessage(err))
	}
	cfg, err := config.Load(a.getenv, false)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errors.New("DATABASE_URL is not set")
	}
	log := logging.New(a.stderr, cfg.LogLevel, cfg.LogFormat)
	if err := checkSchema(cfg, false, log); err != nil {
		return err
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	svc, err := newAuth(cfg, log, pool, nil, nil)
	if err != nil {
		return err
	}
	u, err := svc.CreateUser(ctx, "", auth.NewUser{Email: *email, Role: auth.Role(*role), Password: pw}, "")
	if err != nil {
		return fmt.Errorf("create user: %s", userMessage(err))
	}
	fmt.Fprintf(a.stdout, "created %s %s (id %s); 2FA is set up at the first sign-in\n", u.Role, u.Email, u.ID)
	return nil
}

// userUsage is the usage line of `ordertune user`.
const userUsage = "usage: ordertune user create --email E --role admin|subscriber [--password-file FILE]  (else the password on stdin)"

// readPassword reads the first line of r, so `echo pw | ordertune …`, a
// redirected file and --password-file all work; only the line ending is
// removed. source names r in errors.
func readPassword(r io.Reader, source string) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("no password in %s", source)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// userMessage is the client-safe text of a service error, with its field
// problems, for the terminal.
func userMessage(err error) string {
	e := errs.As(err)
	if e == nil {
		return err.Error()
	}
	msg := e.Message
	for _, f := range e.Fields {
		msg += fmt.Sprintf("; %s %s", f.Field, f.Message)
	}
	if e.Err != nil && msg == "" {
		msg = e.Err.Error()
	}
	return msg
}
