package auth

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/ordertune/ordertune/internal/errs"
)

// Password length limits, in characters. The whole password is hashed:
// nothing is truncated.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 128
)

// Argon2Params is the cost of an argon2id password hash.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	KeyLen  uint32
	SaltLen uint32
}

// RecoveryArgon2 is the cost of a recovery code's hash. A code carries 80
// random bits, so the hash need not resist guessing the way a password's
// must: salt and a little work make a stolen table useless, and verifying
// a user's ten codes stays cheap (1 MiB, one pass each).
func RecoveryArgon2() Argon2Params {
	return Argon2Params{Memory: 1024, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}
}

// DefaultArgon2 returns the production cost: OWASP's minimum for argon2id
// (19 MiB, two passes, one lane).
func DefaultArgon2() Argon2Params {
	return Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}
}

// CheckPassword returns an invalid-argument error naming field when pw
// is too short or too long.
func CheckPassword(field, pw string) error {
	n := utf8.RuneCountInString(pw)
	if !utf8.ValidString(pw) {
		return errs.Fields("invalid password", errs.FieldError{Field: field, Message: "must be valid UTF-8 text"})
	}
	if n < MinPasswordLen || n > MaxPasswordLen {
		return errs.Fields("invalid password", errs.FieldError{Field: field,
			Message: fmt.Sprintf("must be %d to %d characters long", MinPasswordLen, MaxPasswordLen)})
	}
	return nil
}

// acquireHash waits for a hashing slot; the semaphore bounds memory use
// under a burst of logins to MaxConcurrentHashes × Argon2.Memory.
func (s *Service) acquireHash(ctx context.Context) (release func(), err error) {
	select {
	case s.hashSem <- struct{}{}:
		return func() { <-s.hashSem }, nil
	case <-ctx.Done():
		return nil, errs.Wrap(ctx.Err(), errs.Unavailable, "the server is busy; try again")
	}
}

// hashPassword returns pw's argon2id hash in the PHC string format, which
// records the parameters so they can be raised later without breaking
// existing hashes.
func (s *Service) hashPassword(ctx context.Context, pw string) (string, error) {
	return s.hashWith(ctx, s.argon, pw)
}

// hashWith returns secret's argon2id hash with cost p, in the PHC string
// format verifyPassword reads.
func (s *Service) hashWith(ctx context.Context, p Argon2Params, secret string) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := readFull(s.rand, salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	release, err := s.acquireHash(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	key := argon2.IDKey([]byte(secret), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// verifyPassword reports whether pw matches the PHC-format hash.
func (s *Service) verifyPassword(ctx context.Context, hash, pw string) (bool, error) {
	p, salt, key, err := parseHash(hash)
	if err != nil {
		return false, err
	}
	release, err := s.acquireHash(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// parseHash reads a "$argon2id$v=19$m=…,t=…,p=…$salt$key" string.
func parseHash(hash string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("password hash: not an argon2id PHC string")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, fmt.Errorf("password hash: unsupported version %q", parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, fmt.Errorf("password hash: bad parameters %q", parts[3])
	}
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 || p.Memory > 1<<22 {
		return p, nil, nil, fmt.Errorf("password hash: bad parameters %q", parts[3])
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) == 0 || len(key) < 16 {
		return p, nil, nil, fmt.Errorf("password hash: bad salt or key encoding")
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}
