package trading

import (
	"math/big"
	"strings"
	"testing"
)

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

// FuzzPositionSizeRaises: between any two sizes a client could set,
// turning it off never raises it, keeping it never does, and within one
// mode at most one direction of a change is a raise.
func FuzzPositionSizeRaises(f *testing.F) {
	f.Add("shares", "5", "shares", "50")
	f.Add("dollars", "5000", "dollars", "4999.99")
	f.Add("off", "", "dollars", "1")
	f.Add("shares", "5", "dollars", "5")
	f.Add("dollars", "1.5", "dollars", "1.50")
	f.Fuzz(func(t *testing.T, m1, v1, m2, v2 string) {
		a, b := PositionSize{Mode: m1, Value: &v1}, PositionSize{Mode: m2, Value: &v2}
		if a.check() != nil || b.check() != nil {
			return
		}
		if a.Raises(a) {
			t.Fatalf("keeping %+v counts as a raise", a)
		}
		if (PositionSize{Mode: SizeOff}).Raises(a) {
			t.Fatalf("turning %+v off counts as a raise", a)
		}
		if a.Mode == b.Mode && a.Mode != SizeOff && a.Raises(b) && b.Raises(a) {
			t.Fatalf("%s %s and %s both raise each other", a.Mode, *a.Value, *b.Value)
		}
	})
}

func TestPositionSizeRaises(t *testing.T) {
	s := func(mode, v string) PositionSize {
		if mode == SizeOff {
			return PositionSize{Mode: SizeOff}
		}
		return PositionSize{Mode: mode, Value: &v}
	}
	tests := []struct {
		from, to PositionSize
		raises   bool
	}{
		{s("shares", "5"), s("shares", "6"), true},
		{s("shares", "5"), s("shares", "5"), false},
		{s("shares", "5"), s("shares", "4"), false},
		{s("dollars", "5000"), s("dollars", "5000.01"), true},
		{s("dollars", "5000"), s("dollars", "4999.99"), false},
		{s(SizeOff, ""), s("shares", "1"), true},
		{s("shares", "100"), s(SizeOff, ""), false},
		{s("shares", "100"), s("dollars", "1"), true}, // units cannot be compared
		{s("dollars", "100"), s("shares", "1"), true},
	}
	for _, tt := range tests {
		if got := tt.to.Raises(tt.from); got != tt.raises {
			t.Errorf("%+v → %+v: Raises = %v, want %v", tt.from, tt.to, got, tt.raises)
		}
	}
}
