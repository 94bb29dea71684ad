package ibkrsim_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

func TestParseAuthorization(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []ibkrsim.AuthParam
		ok       bool
	}{
		{"canonical", `OAuth realm="limited_poa", oauth_nonce="a%2Bb"`, []ibkrsim.AuthParam{{Key: "realm", Value: "limited_poa"}, {Key: "oauth_nonce", Value: "a+b"}}, true},
		{"any order and spacing", "oauth  \toauth_nonce = \"n\" ,realm=\"r\"", []ibkrsim.AuthParam{{Key: "oauth_nonce", Value: "n"}, {Key: "realm", Value: "r"}}, true},
		{"trailing comma", `OAuth realm="r",`, []ibkrsim.AuthParam{{Key: "realm", Value: "r"}}, true},
		{"bearer", `Bearer x="y"`, nil, false},
		{"unquoted", `OAuth realm=r`, nil, false},
		{"duplicate", `OAuth a="1", a="2"`, nil, false},
		{"bad escape", `OAuth a="%G1"`, nil, false},
		{"no comma", `OAuth a="1" b="2"`, nil, false},
		{"unterminated", `OAuth a="1`, nil, false},
		{"empty", ``, nil, false},
		{"scheme only", `OAuth `, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ibkrsim.ParseAuthorization(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if tc.ok {
				if diff := cmp.Diff(tc.want, got.Params); diff != "" {
					t.Errorf("params (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// FuzzParseAuthorization checks that the parser never panics and that what it
// accepts survives a canonical re-rendering unchanged.
func FuzzParseAuthorization(f *testing.F) {
	v := loadVectors(f)
	for _, c := range v.LSTCases {
		f.Add(c.Request.Authorization)
	}
	for _, c := range v.RequestCases {
		f.Add(c.Authorization)
	}
	f.Add(`OAuth a="", b="%20"`)
	f.Add(`oauth realm="x",,`)
	f.Fuzz(func(t *testing.T, h string) {
		p, err := ibkrsim.ParseAuthorization(h)
		if err != nil {
			return
		}
		var parts []string
		for _, kv := range p.Params {
			parts = append(parts, fmt.Sprintf(`%s="%s"`, kv.Key, url.PathEscape(kv.Value)))
		}
		again, err := ibkrsim.ParseAuthorization("OAuth " + strings.Join(parts, ", "))
		if err != nil {
			t.Fatalf("re-rendered header refused: %v", err)
		}
		if diff := cmp.Diff(p.Params, again.Params); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
