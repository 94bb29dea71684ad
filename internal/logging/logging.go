// Package logging builds the process's zerolog logger.
package logging

import (
	"io"
	"time"

	"github.com/rs/zerolog"
)

// New returns a logger writing to w at level ("info", "debug", …) in format
// "json" (one object a line, for machines) or "console" (for people).
// Writes are serialized: the server's goroutines and libraries' (river's
// workers) log at once, and w need not be safe for that.
func New(w io.Writer, level, format string) zerolog.Logger {
	w = zerolog.SyncWriter(w)
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}
