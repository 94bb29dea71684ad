package broker

import (
	"testing"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// TestCurrent: a handed-out session stays current until the tenant's
// token is renewed or the connection is dropped; a foreign or nil session
// never is.
func TestCurrent(t *testing.T) {
	e := newEnv(t, envOptions{sim: ibkrsim.Config{}})
	u, _ := e.connected("DU8100001")
	other, _ := e.connected("DU8100002")
	c := e.svc.Cache()
	ctx := ctxT(t)
	s1, _, err := c.Session(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	so, _, err := c.Session(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"own session", c.Current(u, s1), true},
		{"another tenant's session", c.Current(u, so), false},
		{"no session", c.Current(u, nil), false},
		{"unknown user", c.Current("no-such-user", s1), false},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: Current = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	c.Invalidate(u)
	if c.Current(u, s1) {
		t.Error("still current after Invalidate")
	}
	s2, _, err := c.Session(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if c.Current(u, s1) || !c.Current(u, s2) {
		t.Errorf("after a new handshake: old current %v, new current %v", c.Current(u, s1), c.Current(u, s2))
	}
}
