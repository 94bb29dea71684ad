package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoStartsStopsAndReuses runs the demo the way `make run` does, stops
// it as Ctrl-C would, and checks that no PostgreSQL is left behind and that
// a second run reuses the data folder.
func TestDemoStartsStopsAndReuses(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	for round := 1; round <= 2; round++ {
		addr := freeAddr(t)
		a, out, logs := testApp(map[string]string{"ORDERTUNE_ADDR": addr, "ORDERTUNE_LOG_LEVEL": "warn"})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- run(ctx, a, []string{"demo", "--data", data}) }()
		waitHTTP(t, "http://"+addr+"/healthz", done)
		waitHTTP(t, "http://"+addr+"/readyz", done)
		pid := postmasterPID(t, filepath.Join(data, "postgres"))
		// The sealer checkpoints the chain head of the seeded data on start.
		waitFile(t, filepath.Join(data, "audit-checkpoints.jsonl"))
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("round %d: demo returned %v", round, err)
		}
		if err := syscall.Kill(pid, 0); err == nil {
			t.Fatalf("round %d: PostgreSQL (pid %d) still running after the demo stopped", round, pid)
		}
		initialised := strings.Contains(out.String(), "initialising PostgreSQL")
		if round == 1 && !initialised || round == 2 && initialised {
			t.Fatalf("round %d: initialised = %v; output:\n%s", round, initialised, out)
		}
		// The server connects as the restricted role, not the owner.
		if strings.Contains(logs.String(), "can change or delete audit rows") || strings.Contains(logs.String(), "checkpoints are off") {
			t.Fatalf("round %d: the demo runs with too much power or without checkpoints:\n%s", round, logs)
		}
		if !strings.Contains(out.String(), "http://"+addr) {
			t.Fatalf("round %d: the URL was not printed:\n%s", round, out)
		}
	}
}

// waitFile waits up to ten seconds for the file at path to have content.
func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st, err := os.Stat(path); err == nil && st.Size() > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never got written", path)
		}
	}
}

func postmasterPID(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}
