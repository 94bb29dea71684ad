package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/errs"
)

func TestProductionArgon2ParamsMeetTheMinimum(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Argon2 = Argon2Params{} })
	u, err := e.svc.CreateUser(context.Background(), "", NewUser{Email: "cost@example.com", Role: Subscriber, Password: e.secret("a long enough password")}, "")
	if err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := e.svc.pool.QueryRow(context.Background(), `SELECT password_hash FROM users WHERE id = $1`, u.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "$argon2id$v=19$") {
		t.Fatalf("stored hash is not argon2id: %.20s", stored)
	}
	dummy, err := e.svc.dummyHash(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for name, hash := range map[string]string{"stored": stored, "dummy": dummy} {
		p, _, key, err := parseHash(hash)
		if err != nil {
			t.Fatal(err)
		}
		if p.Memory < 19*1024 || p.Time < 2 || p.Threads < 1 || len(key) < 32 {
			t.Errorf("%s hash parameters m=%d KiB t=%d p=%d keylen=%d, want at least m=19456 t=2 p=1 keylen=32", name, p.Memory, p.Time, p.Threads, len(key))
		}
	}
}

func TestPasswordRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		pw   string
		ok   bool
	}{
		{"seven", "1234567", false},
		{"eight", "12345678", true},
		{"eight runes, more bytes", "ééééééé€", true},
		{"seven runes, many bytes", "€€€€€€€", false},
		{"128", strings.Repeat("x", 128), true},
		{"129", strings.Repeat("x", 129), false},
		{"invalid utf-8", "abcdefg\xff", false},
	}
	for _, tt := range tests {
		err := CheckPassword("password", tt.pw)
		if (err == nil) != tt.ok {
			t.Errorf("%s: CheckPassword = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil {
			want := []errs.FieldError{{Field: "password"}}
			if diff := cmp.Diff(want, errs.As(err).Fields, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Message" }, cmp.Ignore())); diff != "" {
				t.Errorf("%s: fields (-want +got):\n%s", tt.name, diff)
			}
		}
	}
}

// TestPasswordsAreNotTruncated proves the last character of a 128-character
// password matters (bcrypt, for one, ignores everything after byte 72).
func TestPasswordsAreNotTruncated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pw := e.secret(strings.Repeat("p", 127) + "A")
	if _, err := e.svc.CreateUser(context.Background(), "", NewUser{Email: "long@example.com", Role: Subscriber, Password: pw}, ""); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Login(context.Background(), "long@example.com", e.secret(strings.Repeat("p", 127)+"B"), "")
	wantCode(t, "login with the last character changed", err, errs.Unauthenticated)
	if _, err := e.svc.Login(context.Background(), "LONG@example.com", pw, ""); err != nil {
		t.Fatalf("login with the right password (email in other case): %v", err)
	}
}

// TestUnknownEmailLooksLikeWrongPassword proves an unknown email gets the
// same answer as a wrong password, and does the same work: both wait for
// a hashing slot, so holding every slot stalls both alike.
func TestUnknownEmailLooksLikeWrongPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.MaxConcurrentHashes = 1 })
	u, _, _ := e.user(Subscriber)
	ctx := context.Background()

	_, errWrong := e.svc.Login(ctx, u.Email, e.secret("not the password"), "198.51.100.7")
	_, errUnknown := e.svc.Login(ctx, "nobody@example.com", e.secret("not the password"), "198.51.100.8")
	if diff := cmp.Diff(errs.As(errWrong).Error(), errs.As(errUnknown).Error()); diff != "" {
		t.Errorf("answers differ (-wrong password +unknown email):\n%s", diff)
	}
	wantCode(t, "wrong password", errWrong, errs.Unauthenticated)

	dummy, err := e.svc.dummyHash(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, _, _, err := parseHash(dummy)
	if err != nil {
		t.Fatal(err)
	}
	if p != e.svc.argon {
		t.Errorf("dummy hash parameters %+v, want the service's %+v", p, e.svc.argon)
	}

	e.svc.hashSem <- struct{}{} // hold the only hashing slot
	defer func() { <-e.svc.hashSem }()
	for _, email := range []string{u.Email, "nobody@example.com"} {
		c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := e.svc.Login(c, email, "whatever-password", "")
		cancel()
		wantCode(t, "login of "+email+" with no hashing slot free", err, errs.Unavailable)
	}
}

func TestHashConcurrencyIsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.MaxConcurrentHashes = 3 })
	if got := cap(e.svc.hashSem); got != 3 {
		t.Fatalf("hash slots = %d, want 3", got)
	}
	e2 := newEnv(t)
	if got := cap(e2.svc.hashSem); got < 1 || got > 4 {
		t.Fatalf("default hash slots = %d, want 1 to 4", got)
	}
}

func FuzzParseHash(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5")
	f.Add("$argon2id$v=19$m=0,t=0,p=0$$")
	f.Add("$argon2i$v=19$m=1,t=1,p=1$x$y")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := parseHash(s)
		if err == nil && (p.Memory == 0 || p.Time == 0 || p.Threads == 0 || len(salt) == 0 || len(key) < 16) {
			t.Fatalf("accepted unusable parameters %+v", p)
		}
	})
}
