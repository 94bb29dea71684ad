package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestSimRegisterAndTestConnection drives the command line the way the
// README does: a simulator, a registered consumer, and Test Connection
// against it, passing for the right mode and failing for the wrong one.
func TestSimRegisterAndTestConnection(t *testing.T) {
	addr := freeAddr(t)
	simApp, _, _ := testApp(nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, simApp, []string{"sim", "--addr", addr}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sim: %v", err)
		}
	}()
	waitHTTP(t, "http://"+addr+"/sim/orders", done)

	creds := filepath.Join(t.TempDir(), "creds.json")
	a, out, _ := testApp(nil)
	if err := run(t.Context(), a, []string{"sim", "register", "--out", creds, "--sim", "http://" + addr, "--account", "DU7654321"}); err != nil {
		t.Fatalf("sim register: %v", err)
	}

	base := "http://" + addr + "/v1/api"
	out.Reset()
	if err := run(t.Context(), a, []string{"ibkr", "test-connection", "--creds", creds, "--base", base, "--mode", "paper"}); err != nil {
		t.Fatalf("test-connection (paper): %v\n%s", err, out)
	}
	for _, step := range []string{"credentials", "live_session_token", "brokerage_session", "accounts", "trading_permissions"} {
		if !strings.Contains(out.String(), step) {
			t.Errorf("output lacks step %s:\n%s", step, out)
		}
	}

	out.Reset()
	err := run(t.Context(), a, []string{"ibkr", "test-connection", "--creds", creds, "--base", base, "--mode", "live"})
	var ec exitCode
	if !errors.As(err, &ec) || ec != 1 {
		t.Fatalf("test-connection (live with a paper account): err = %v, want exit status 1\n%s", err, out)
	}
	if !strings.Contains(strings.ToLower(out.String()), "paper") {
		t.Errorf("the failure should say the account is a paper account:\n%s", out)
	}
}
