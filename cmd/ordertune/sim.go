package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// cmdSim runs the IBKR Web API simulator, or with "register" creates a
// simulated consumer.
func cmdSim(ctx context.Context, a *app, args []string) error {
	if len(args) > 0 && args[0] == "register" {
		return cmdSimRegister(ctx, a, args[1:])
	}
	fs := newFlagSet(a, "sim")
	addr := fs.String("addr", "127.0.0.1:5005", "listen address; IBKR's API is served at http://ADDR/v1/api")
	consumers := fs.String("consumers", "", "consumers FILE (JSON array) to load at start")
	lenient := fs.Bool("lenient-query-signing", false, "also accept signatures that exclude the query or keep it in the URL")
	lstTTL := fs.Duration("lst-ttl", 24*time.Hour, "lifetime of a live session token")
	idle := fs.Duration("session-timeout", 6*time.Minute, "brokerage session lifetime without requests")
	penalty := fs.Duration("penalty-box", 10*time.Minute, "how long a session over the rate limit is refused")
	publicURL := fs.String("public-url", "", "base URL clients sign, e.g. https://sim.example/v1/api (default: from the Host header)")
	noPacing := fs.Bool("no-pacing", false, "turn IBKR's rate limits off (load tests only)")
	latency := fs.Duration("latency", 0, "hold every IBKR API request this long, as a distant IBKR would (e.g. 50ms)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("sim: unexpected argument %q", fs.Arg(0))
	}
	log := zerolog.New(a.stderr).With().Timestamp().Str("component", "ibkrsim").Logger()
	srv := ibkrsim.New(ibkrsim.Config{
		PublicBaseURL:       *publicURL,
		LSTTTL:              *lstTTL,
		SessionIdleTimeout:  *idle,
		LenientQuerySigning: *lenient,
		Logger:              log,
		Pacing:              ibkrsim.Pacing{PenaltyBox: *penalty, Disabled: *noPacing},
		Latency:             *latency,
	})
	if *consumers != "" {
		if err := srv.LoadConsumersFile(*consumers); err != nil {
			return fmt.Errorf("sim: %w", err)
		}
	}
	return ibkrsim.ListenAndServe(ctx, *addr, srv, func(bound string) {
		fmt.Fprintf(a.stdout, "IBKR simulator serving http://%s%s\n", bound, ibkrsim.APIPrefix)
	})
}

// cmdSimRegister writes a new consumer's credentials FILE and registers the
// consumer with a running simulator or in a consumers FILE.
func cmdSimRegister(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet(a, "sim register")
	out := fs.String("out", "", "credentials FILE to write (required)")
	account := fs.String("account", "", "account id (default: a fresh DU + 7 digits)")
	simURL := fs.String("sim", "", "running simulator to register with (default http://127.0.0.1:5005)")
	consumers := fs.String("consumers", "", "consumers FILE to add the consumer to instead")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("sim register: --out is required")
	}
	if *simURL != "" && *consumers != "" {
		return errors.New("sim register: give --sim or --consumers, not both")
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("sim register: %s exists; refusing to overwrite credentials", *out)
	}
	c, creds, err := ibkrsim.Register(ibkrsim.RegisterOptions{AccountID: *account})
	if err != nil {
		return fmt.Errorf("sim register: %w", err)
	}
	if *consumers != "" {
		err = ibkrsim.AppendConsumersFile(*consumers, c)
	} else {
		base := *simURL
		if base == "" {
			base = "http://127.0.0.1:5005"
		}
		err = ibkrsim.PostConsumer(ctx, &http.Client{Timeout: 10 * time.Second}, base, c)
	}
	if err != nil {
		return fmt.Errorf("sim register: %w", err)
	}
	data, err := json.MarshalIndent(creds, "", "  ")
	if err != nil {
		return fmt.Errorf("sim register: %w", err)
	}
	if err := ibkrsim.WriteFileAtomic(*out, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("sim register: write %s: %w", *out, err)
	}
	fmt.Fprintf(a.stdout, "registered consumer %s for account %s; credentials in %s\n", creds.ConsumerKey, creds.AccountID, *out)
	return nil
}
