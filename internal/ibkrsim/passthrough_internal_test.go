package ibkrsim

import (
	"testing"
	"time"
)

func TestParseSpan(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "5min", want: 5 * time.Minute},
		{in: "1h", want: time.Hour},
		{in: "2d", want: 48 * time.Hour},
		{in: "1w", want: 7 * 24 * time.Hour},
		{in: "1m", want: 30 * 24 * time.Hour},
		{in: "1Y", want: 365 * 24 * time.Hour},
		{in: "0d", wantErr: true},
		{in: "d", wantErr: true},
		{in: "12345d", wantErr: true},
		{in: "9999y", wantErr: true},
		{in: "50y", want: maxSpan},
		{in: "3x", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tc := range tests {
		got, err := parseSpan(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("parseSpan(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// FuzzParseSpan: no period or bar text panics, and what parses is a
// positive span of at most maxSpan.
func FuzzParseSpan(f *testing.F) {
	for _, s := range []string{"1d", "5min", "9999y", "0", "-1d", "1 d", "1dd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseSpan(s)
		if err == nil && (d <= 0 || d > maxSpan) {
			t.Fatalf("parseSpan(%q) = %v", s, d)
		}
	})
}
