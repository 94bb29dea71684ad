package clocktest

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds: for what another goroutine brings
// about on the real clock. The deadline only bounds a broken test (which
// fails naming what), it asserts no timing.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
