package trading

import (
	"math/big"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeCursor: any client string is a cursor or a clean error, and a
// cursor this server issued reads back as itself.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(time.UnixMicro(1_700_000_000_123_456), "6f1c1e9a-3b7d-4c1e-9a55-0d4f1e2a3b4c"))
	for _, s := range []string{"", "x", "MTIzfA", "LTF8Ng", "%%%", strings.Repeat("A", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil || c == nil {
			return
		}
		if again := encodeCursor(c.at, c.id); again != s {
			back, err := decodeCursor(again)
			if err != nil || !back.at.Equal(c.at) || back.id != c.id {
				t.Fatalf("cursor %q decodes to %v/%s, which does not round-trip", s, c.at, c.id)
			}
		}
	})
}

// FuzzParseDecimal: accepted decimals are exact (the rational prints back
// to the same value) and never come from floats' notations.
func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"187.25", "0", "-0.031", "1e3", "NaN", "Inf", "0x10", "1_000", " 5 ", "123456789012.123456", "1.1234567"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, ok := parseDecimal(s)
		if !ok {
			return
		}
		if strings.ContainsAny(s, "eExXpP_") {
			t.Fatalf("%q accepted", s)
		}
		want, _ := new(big.Rat).SetString(strings.TrimSpace(s))
		if r.Cmp(want) != 0 {
			t.Fatalf("%q parsed as %s", s, r.RatString())
		}
	})
}

// FuzzCheckKey: a key is accepted only when it is 1-255 visible ASCII
// characters.
func FuzzCheckKey(f *testing.F) {
	for _, s := range []string{"", "k", "a b", "ключ", strings.Repeat("x", 256), "6f1c1e9a-3b7d-4c1e-9a55-0d4f1e2a3b4c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := checkKey(s)
		ok := len(s) >= 1 && len(s) <= MaxIdempotencyKey
		for i := 0; i < len(s); i++ {
			ok = ok && s[i] > 0x20 && s[i] < 0x7f
		}
		if (err == nil) != ok {
			t.Fatalf("checkKey(%q) = %v, want accepted %v", s, err, ok)
		}
	})
}

// FuzzPositionSize: whatever a client sends is a clean error or a valid
// size whose value is a positive decimal with at most two places.
func FuzzPositionSize(f *testing.F) {
	for _, s := range [][2]string{{"dollars", "5000"}, {"dollars", "0.001"}, {"shares", "10"}, {"shares", "1.5"}, {"off", ""}, {"x", "1"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, mode, value string) {
		p := PositionSize{Mode: mode, Value: &value}
		if err := p.check(); err != nil {
			return
		}
		if p.Mode == SizeOff {
			if p.Value != nil {
				t.Fatalf("off with value %q", *p.Value)
			}
			return
		}
		r, ok := parseDecimal(*p.Value)
		if !ok || r.Sign() <= 0 {
			t.Fatalf("accepted %s %q", mode, value)
		}
	})
}
