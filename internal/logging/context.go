package logging

import (
	"context"

	"github.com/rs/zerolog"
)

// ctxKey keys the logger a context carries.
type ctxKey struct{}

// WithLogger returns ctx carrying l: the request's logger (made by the
// HTTP layer with the request id, the user id and the tenant's mode) or a
// worker's (with its name). Feature code logs through FromContext, so an
// operator can join every line to the request or worker that wrote it.
func WithLogger(ctx context.Context, l zerolog.Logger) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// FromContext returns the logger ctx carries, or fallback when it carries
// none (a call from outside any request or worker).
func FromContext(ctx context.Context, fallback zerolog.Logger) zerolog.Logger {
	if l, ok := ctx.Value(ctxKey{}).(zerolog.Logger); ok {
		return l
	}
	return fallback
}

// With returns ctx whose logger (or fallback's, when it carries none) has
// the fields add puts on it, e.g. a confirmation id.
func With(ctx context.Context, fallback zerolog.Logger, add func(zerolog.Context) zerolog.Context) context.Context {
	return WithLogger(ctx, add(FromContext(ctx, fallback).With()).Logger())
}
