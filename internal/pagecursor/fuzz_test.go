package pagecursor

import (
	"strings"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/ids"
)

// FuzzDecode: any client string is a cursor or a clean error; one it
// accepts names a UUID and a time PostgreSQL can hold, and a cursor this
// server issued reads back as itself.
func FuzzDecode(f *testing.F) {
	f.Add(Encode(time.UnixMicro(1_700_000_000_123_456), "6f1c1e9a-3b7d-4c1e-9a55-0d4f1e2a3b4c"))
	f.Add(Encode(time.Date(2026, 11, 23, 14, 30, 0, 123000, time.UTC), "0b6a3c1e-6f4e-4c4e-9c3e-2f1d5a7b8c9d"))
	for _, s := range []string{"", "x", "MTIzfA", "LTF8Ng", "MTIz", "LTF8", "OTk5OTk5OTk5OTk5OTk5OTk5fDBi", "%%%", strings.Repeat("A", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Decode(s)
		if err != nil || c == nil {
			return
		}
		if !ids.Valid(c.ID) || c.At.Year() < -4713 || c.At.Year() > 294276 {
			t.Fatalf("accepted %q: %+v", s, c)
		}
		back, err := Decode(Encode(c.At, c.ID))
		if err != nil || !back.At.Equal(c.At) || back.ID != c.ID {
			t.Fatalf("cursor %q does not round-trip: %+v, %v", s, back, err)
		}
	})
}

// TestDecodeRefuses: what a client may send that no server issued.
func TestDecodeRefuses(t *testing.T) {
	for _, s := range []string{"x", "%%%", Encode(time.Now(), "not-a-uuid"), "OTk5OTk5OTk5OTk5OTk5OTk5fDBi"} {
		if c, err := Decode(s); err == nil {
			t.Errorf("Decode(%q) = %+v, want an error", s, c)
		}
	}
	if c, err := Decode(""); c != nil || err != nil {
		t.Errorf(`Decode("") = %+v, %v; want the first page`, c, err)
	}
}
