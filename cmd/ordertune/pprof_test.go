package main

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/clocktest"
	"github.com/ordertune/ordertune/internal/replicatest"
)

// ORDERTUNE_PPROF_ADDR's listener serves the profiler's index and stops
// with the server's context.
func TestPprofListener(t *testing.T) {
	addr := replicatest.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	if err := servePprof(ctx, addr, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("GET /debug/pprof/: %d, %d bytes", resp.StatusCode, len(body))
	}
	cancel()
	clocktest.WaitFor(t, "the profiler to stop with the server's context", func() bool {
		resp, err := http.Get("http://" + addr + "/debug/pprof/")
		if err != nil {
			return true
		}
		resp.Body.Close()
		return false
	})
}
