package auth

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ordertune/ordertune/internal/errs"
)

// FuzzParseCursor: any cursor a client sends is either one makeCursor
// could have made or an invalid-argument error, never a panic.
func FuzzParseCursor(f *testing.F) {
	f.Add(makeCursor(User{ID: "6f1c1b8e-3c3e-4c8e-9d7e-0a1b2c3d4e5f", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}))
	f.Add("")
	f.Add("fA")
	f.Add("MjAyNi0wMS0wMlQwMzowNDowNVp8eA")
	f.Fuzz(func(t *testing.T, c string) {
		ts, id, err := parseCursor(c)
		if err != nil {
			if errs.CodeOf(err) != errs.Invalid {
				t.Fatalf("error %v is not invalid_argument", err)
			}
			return
		}
		if c != "" && makeCursor(User{ID: id, CreatedAt: ts}) == "" {
			t.Fatal("accepted cursor does not round-trip")
		}
		if !ValidID(id) {
			t.Fatalf("accepted id %q", id)
		}
	})
}

// FuzzCheckInput: emails and passwords from clients are validated without
// panics, and an accepted password is 8 to 128 characters of UTF-8.
func FuzzCheckInput(f *testing.F) {
	f.Add("a@example.com", "password")
	f.Add("", "")
	f.Add("@", strings.Repeat("€", 128))
	f.Add("a@b@c", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8")
	f.Fuzz(func(t *testing.T, email, pw string) {
		if checkEmail(email) == nil && (!strings.Contains(email, "@") || len(email) > 254) {
			t.Fatalf("accepted email %q", email)
		}
		if CheckPassword("password", pw) == nil {
			n := utf8.RuneCountInString(pw)
			if !utf8.ValidString(pw) || n < MinPasswordLen || n > MaxPasswordLen {
				t.Fatalf("accepted password of %d characters", n)
			}
		}
		_ = normalizeRecovery(pw)
	})
}
