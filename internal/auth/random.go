package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
)

func readFull(r io.Reader, b []byte) (int, error) { return io.ReadFull(r, b) }

// randomToken returns n random bytes, base64url-encoded without padding.
func (s *Service) randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := readFull(s.rand, b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// digest is how session ids, API tokens and recovery codes are stored: they
// carry 80 to 256 random bits, so a fast hash is enough to make a stolen
// table useless, unlike passwords, which need argon2id.
func digest(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}
