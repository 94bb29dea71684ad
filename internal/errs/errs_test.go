package errs

import (
	"errors"
	"fmt"
	"testing"
)

func TestCodeOf(t *testing.T) {
	base := E(NotFound, "signal %s not found", "x")
	tests := []struct {
		name string
		err  error
		want Code
	}{
		{"nil", nil, ""},
		{"plain", errors.New("boom"), Internal},
		{"direct", base, NotFound},
		{"wrapped", fmt.Errorf("get signal: %w", base), NotFound},
		{"cause kept", Wrap(errors.New("db down"), Unavailable, "try again"), Unavailable},
	}
	for _, tt := range tests {
		if got := CodeOf(tt.err); got != tt.want {
			t.Errorf("%s: CodeOf = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestWrapKeepsCauseOutOfMessage(t *testing.T) {
	cause := errors.New("password authentication failed for user x")
	e := Wrap(cause, Unavailable, "database unavailable")
	if e.Message != "database unavailable" {
		t.Fatalf("Message = %q", e.Message)
	}
	if !errors.Is(e, cause) {
		t.Fatal("cause not reachable through Unwrap")
	}
}
