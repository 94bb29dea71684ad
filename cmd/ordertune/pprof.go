package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/rs/zerolog"
)

// servePprof serves Go's profiler on addr (ORDERTUNE_PPROF_ADDR, loopback
// only, off by default) until ctx ends: `go tool pprof
// http://127.0.0.1:6060/debug/pprof/profile?seconds=30` profiles a running
// server under real load (scripts/BENCHMARKS.md, the cold confirm's CPU).
// Its own mux and listener: nothing of it is reachable through the app's.
func servePprof(ctx context.Context, addr string, log zerolog.Logger) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Warn().Str("addr", l.Addr().String()).Msg("profiler listening (ORDERTUNE_PPROF_ADDR)")
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("profiler stopped")
		}
	}()
	return nil
}
