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

// All is true only when every failure in the tree has the code.
func TestAll(t *testing.T) {
	competing := E(BrokerSessionCompeting, "in use by another login")
	other := E(BrokerUnavailable, "IBKR did not answer")
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"one row", fmt.Errorf("user u, confirmation c: %w", competing), true},
		{"two users", fmt.Errorf("reconcile: %w", errors.Join(errors.Join(competing, competing), competing)), true},
		{"one of them unavailable", fmt.Errorf("reconcile: %w", errors.Join(competing, fmt.Errorf("user v: %w", other))), false},
		{"unavailable", other, false},
		{"not the broker's", errors.New("claim confirmations: connection refused"), false},
		{"an empty join", errors.Join(nil, nil), false},
		{"nil", nil, false},
	} {
		if got := All(tc.err, BrokerSessionCompeting); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
