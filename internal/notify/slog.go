package notify

import (
	"context"
	"log/slog"

	"github.com/rs/zerolog"
)

// zerologHandler passes river's warnings and errors to the service's log.
type zerologHandler struct {
	log   zerolog.Logger
	attrs []slog.Attr
}

func (h zerologHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h zerologHandler) Handle(_ context.Context, r slog.Record) error {
	e := h.log.Warn()
	if r.Level >= slog.LevelError {
		e = h.log.Error()
	}
	e = e.Str("component", "river")
	add := func(a slog.Attr) bool { e = e.Str(a.Key, a.Value.String()); return true }
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	e.Msg(r.Message)
	return nil
}

func (h zerologHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return zerologHandler{log: h.log, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h zerologHandler) WithGroup(string) slog.Handler { return h }
