package ids_test

import (
	"testing"

	"github.com/ordertune/ordertune/internal/ids"
)

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{
		"3f2504e0-4f89-41d3-9a0c-0305e82c3301":          true,
		"3F2504E0-4F89-41D3-9A0C-0305E82C3301":          true,
		"3f2504e04f8941d39a0c0305e82c3301":              false, // no hyphens
		"{3f2504e0-4f89-41d3-9a0c-0305e82c3301}":        false,
		"urn:uuid:3f2504e0-4f89-41d3-9a0c-0305e82c3301": false,
		"3f2504e0-4f89-41d3-9a0c-0305e82c330g":          false,
		"3f2504e0-4f89-41d3-9a0c+0305e82c3301":          false,
		"3f2504e0-4f89-41d3-9a0c-0305e82c33011":         false,
		"":                                              false,
		"' OR 1=1 --":                                   false,
	} {
		if got := ids.Valid(s); got != want {
			t.Errorf("Valid(%q) = %v, want %v", s, got, want)
		}
	}
	seen := map[string]bool{}
	for range 1000 {
		id := ids.New()
		if !ids.Valid(id) || seen[id] || id[14] != '4' {
			t.Fatalf("New() = %q: not a fresh version 4 UUID", id)
		}
		seen[id] = true
	}
}

func FuzzValid(f *testing.F) {
	f.Add("3f2504e0-4f89-41d3-9a0c-0305e82c3301")
	f.Add("x")
	f.Fuzz(func(t *testing.T, s string) {
		if ids.Valid(s) && len(s) != 36 {
			t.Fatalf("Valid(%q) with %d characters", s, len(s))
		}
	})
}
