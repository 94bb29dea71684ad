package logging

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestContextLogger(t *testing.T) {
	var base, req bytes.Buffer
	fallback := zerolog.New(&base)
	ctx := context.Background()
	l := FromContext(ctx, fallback)
	l.Info().Msg("no request")
	if base.Len() == 0 {
		t.Fatal("without a logger in the context the fallback must write")
	}
	ctx = WithLogger(ctx, zerolog.New(&req).With().Str("request_id", "r1").Logger())
	ctx = With(ctx, fallback, func(c zerolog.Context) zerolog.Context { return c.Str("confirmation", "c1") })
	l = FromContext(ctx, fallback)
	l.Info().Msg("in a request")
	if got := req.String(); !strings.Contains(got, `"request_id":"r1"`) || !strings.Contains(got, `"confirmation":"c1"`) {
		t.Errorf("request log = %s, want the request id and the added field", got)
	}
}
