// Package logtest captures a test's log and checks that none of the secrets
// the test handled (passwords, TOTP codes, session ids, tokens, keys) was
// written to it.
package logtest

import (
	"bytes"
	"strings"
	"sync"
)

// Sink is a log writer for tests that also remembers the test's secrets. It
// is safe for concurrent use: a server under test logs from many
// goroutines while the test reads.
type Sink struct {
	mu      sync.Mutex
	b       bytes.Buffer
	secrets []string
}

// Write appends p to the captured log.
func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything logged so far.
func (s *Sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Secret remembers secret as something the log must never hold, and
// returns it, so a test can note a value where it first sees it. An empty
// string is not remembered: every log holds it.
func (s *Sink) Secret(secret string) string {
	if secret == "" {
		return secret
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets = append(s.secrets, secret)
	return secret
}

// Secrets returns the remembered secrets in the order they were noted.
func (s *Sink) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.secrets...)
}

// Leaks returns the positions, in Secrets, of the remembered secrets the
// log holds. It returns positions rather than the secrets so that a failing
// test can say which one leaked without printing it.
func (s *Sink) Leaks() []int {
	out := s.String()
	var leaks []int
	for i, secret := range s.Secrets() {
		if ContainsSecret(out, secret) {
			leaks = append(leaks, i)
		}
	}
	return leaks
}

// ContainsSecret reports whether log contains secret. Short secrets (6-digit
// codes) count only as a whole word, so a request id or a latency that
// happens to contain the same digits is not a false alarm.
func ContainsSecret(log, secret string) bool {
	if len(secret) > 8 {
		return strings.Contains(log, secret)
	}
	isWord := func(b byte) bool {
		return b == '.' || b == '_' || b == '-' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
	}
	for i := 0; ; {
		j := strings.Index(log[i:], secret)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(secret)
		if (start == 0 || !isWord(log[start-1])) && (end == len(log) || !isWord(log[end])) {
			return true
		}
		i = start + 1
	}
}
