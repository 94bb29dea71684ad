package logtest_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/logging/logtest"
)

func TestContainsSecret(t *testing.T) {
	tests := []struct {
		log, secret string
		want        bool
	}{
		{`{"code":"123456"}`, "123456", true},
		{`code 123456 rejected`, "123456", true},
		{`123456`, "123456", true},
		{`{"request_id":"ab123456cd"}`, "123456", false},
		{`{"latency":0.1234567}`, "123456", false},
		{`x 1234567 y 123456`, "123456", true},
		{`{"session":"abcdefghijklmnop"}`, "abcdefghijklmnop", true},
		{`{"session":"xabcdefghijklmnopx"}`, "abcdefghijklmnop", true},
	}
	for _, tt := range tests {
		if got := logtest.ContainsSecret(tt.log, tt.secret); got != tt.want {
			t.Errorf("ContainsSecret(%q, %q) = %v, want %v", tt.log, tt.secret, got, tt.want)
		}
	}
}

func TestSinkLeaks(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		log     string
		want    []int
	}{
		{"nothing logged", []string{"hunter2-password", "654321"}, "", nil},
		{"clean log", []string{"hunter2-password", "654321"}, `{"message":"request","id":"a654321b"}` + "\n", nil},
		{"second leaks", []string{"hunter2-password", "654321"}, `{"code":"654321"}` + "\n", []int{1}},
		{"both leak", []string{"hunter2-password", "654321"}, `hunter2-password 654321`, []int{0, 1}},
		{"empty not remembered", []string{"", "654321"}, `654321`, []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s logtest.Sink
			for _, secret := range tt.secrets {
				if got := s.Secret(secret); got != secret {
					t.Errorf("Secret(%q) = %q", secret, got)
				}
			}
			fmt.Fprint(&s, tt.log)
			if diff := cmp.Diff(tt.log, s.String()); diff != "" {
				t.Errorf("String() (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, s.Leaks()); diff != "" {
				t.Errorf("Leaks() (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSinkConcurrent is for the race detector: servers log from many
// goroutines while the test notes secrets.
func TestSinkConcurrent(t *testing.T) {
	var s logtest.Sink
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(2)
		go func() { defer wg.Done(); fmt.Fprintf(&s, "line %d\n", i) }()
		go func() { defer wg.Done(); s.Secret(fmt.Sprintf("secret-number-%d", i)) }()
	}
	wg.Wait()
	if got := len(s.Secrets()); got != 4 {
		t.Errorf("remembered %d secrets, want 4", got)
	}
	if leaks := s.Leaks(); len(leaks) != 0 {
		t.Errorf("Leaks() = %v, want none", leaks)
	}
}
