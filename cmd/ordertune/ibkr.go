package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/trading"
)

// cmdIBKR runs the IBKR tools: `ibkr test-connection --creds FILE [--base URL]
// [--mode paper|live]` prints the Test Connection steps and exits 0 only when
// every step passes.
func cmdIBKR(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 || args[0] != "test-connection" {
		fmt.Fprintln(a.stderr, "usage: ordertune ibkr test-connection --creds FILE [--base URL] [--mode paper|live]")
		return errors.New("ibkr: name a subcommand (test-connection)")
	}
	fs := newFlagSet(a, "ibkr test-connection")
	credsFile := fs.String("creds", "", "credentials FILE (JSON, the keys of shared/API.md)")
	base := fs.String("base", "", "IBKR Web API base URL (default $ORDERTUNE_IBKR_BASE_URL or "+ibkr.DefaultBaseURL+")")
	mode := fs.String("mode", "", "paper or live: the account must be of this kind (default: either)")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *credsFile == "" {
		return errors.New("ibkr test-connection: --creds FILE is required")
	}
	if *mode != "" {
		if _, err := trading.ParseMode(*mode); err != nil {
			return fmt.Errorf("ibkr test-connection: --mode must be paper or live, not %q", *mode)
		}
	}
	raw, err := os.ReadFile(*credsFile)
	if err != nil {
		return fmt.Errorf("ibkr test-connection: %w", err)
	}
	var in ibkr.CredentialsInput
	if err := json.Unmarshal(raw, &in); err != nil {
		// The JSON error names an offset, never the content.
		return fmt.Errorf("ibkr test-connection: %s is not a JSON credentials file: %w", *credsFile, err)
	}
	if *base == "" && a.getenv != nil {
		*base = a.getenv("ORDERTUNE_IBKR_BASE_URL")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	opts := ibkr.Options{BaseURL: *base, HTTPClient: &http.Client{}}
	res := ibkr.TestConnection(ctx, opts, ibkr.ConnectionTest{Input: in, Mode: *mode})
	if err := ibkr.FormatTestResult(a.stdout, res); err != nil {
		return err
	}
	if !res.OK {
		return exitCode(1)
	}
	return nil
}
