// Package seal encrypts secrets at rest with AES-256-GCM under a key ring.
//
// Every ciphertext names the key that sealed it, so a new primary key can be
// added while old ciphertexts still open, rows re-sealed online, and the
// old key retired. The associated data binds a ciphertext to where it is
// stored (user id and field name): moved to another row or field, it no
// longer opens.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// version is the first byte of every ciphertext, so the format can change.
const version = 1

const keySize = 32 // AES-256

// ErrOpen is returned for every ciphertext that does not open: tampered,
// moved to another row or field, or sealed by a key the ring lacks. The
// reasons are not told apart on purpose.
var ErrOpen = errors.New("seal: ciphertext does not open")

var validID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Ring is a set of named AES-256 keys; the primary seals, all open.
type Ring struct {
	primary string
	aeads   map[string]cipher.AEAD
	order   []string
	// macKeys are keys derived from each key for MAC (never the keys
	// themselves).
	macKeys map[string][]byte
}

// ParseRing parses a key ring spec "id:base64key,id2:base64key2". The first
// key is the primary. Errors never contain key material.
func ParseRing(spec string) (*Ring, error) {
	r := &Ring{aeads: map[string]cipher.AEAD{}}
	for i, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, b64, ok := strings.Cut(item, ":")
		if !ok || !validID.MatchString(id) {
			return nil, fmt.Errorf("master key %d: want id:base64key with an id of letters, digits, - or _", i+1)
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			key, err = base64.RawURLEncoding.DecodeString(b64)
		}
		if err != nil || len(key) != keySize {
			return nil, fmt.Errorf("master key %q: want %d random bytes, base64-encoded (ordertune keys generate makes one)", id, keySize)
		}
		if _, dup := r.aeads[id]; dup {
			return nil, fmt.Errorf("master key %q appears twice", id)
		}
		if err := r.add(id, key); err != nil {
			return nil, err
		}
	}
	if len(r.order) == 0 {
		return nil, errors.New("no master key: set ORDERTUNE_MASTER_KEYS (ordertune keys generate makes one)")
	}
	return r, nil
}

func (r *Ring) add(id string, key []byte) error {
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	if r.primary == "" {
		r.primary = id
	}
	r.aeads[id] = aead
	r.order = append(r.order, id)
	if r.macKeys == nil {
		r.macKeys = map[string][]byte{}
	}
	r.macKeys[id] = deriveMACKey(key)
	return nil
}

// GenerateKey returns a new key ring entry "id:base64key" from crypto/rand.
func GenerateKey(id string) (string, error) {
	if !validID.MatchString(id) {
		return "", fmt.Errorf("key id %q: use letters, digits, - or _ (at most 32)", id)
	}
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return id + ":" + base64.StdEncoding.EncodeToString(key), nil
}

// RandomRing returns a ring with one fresh random key named id, for tests
// and throwaway demos.
func RandomRing(id string) *Ring {
	spec, err := GenerateKey(id)
	if err != nil {
		panic(err)
	}
	r, err := ParseRing(spec)
	if err != nil {
		panic(err)
	}
	return r
}

// Primary returns the id of the key that seals.
func (r *Ring) Primary() string { return r.primary }

// IDs returns the ids of every key in the ring, primary first.
func (r *Ring) IDs() []string { return append([]string(nil), r.order...) }

// Seal encrypts plaintext with the primary key. aad names where the
// ciphertext will live (for example a user id and a field name); Open must
// be given the same values.
func (r *Ring) Seal(plaintext []byte, aad ...string) ([]byte, error) {
	aead := r.aeads[r.primary]
	header := make([]byte, 0, 2+len(r.primary)+aead.NonceSize())
	header = append(header, version, byte(len(r.primary)))
	header = append(header, r.primary...)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	out := append(header, nonce...)
	return aead.Seal(out, nonce, plaintext, associated(header, aad)), nil
}

// Open decrypts a ciphertext made by Seal with the same aad.
func (r *Ring) Open(ciphertext []byte, aad ...string) ([]byte, error) {
	id, rest, ok := split(ciphertext)
	if !ok {
		return nil, ErrOpen
	}
	aead, ok := r.aeads[id]
	if !ok || len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrOpen
	}
	header := ciphertext[:2+len(id)]
	nonce, body := rest[:aead.NonceSize()], rest[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, body, associated(header, aad))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// KeyID returns the id of the key that sealed ciphertext, so rotation can
// find the rows still under an old key.
func KeyID(ciphertext []byte) (string, bool) {
	id, _, ok := split(ciphertext)
	return id, ok
}

// NeedsRewrap reports whether ciphertext was sealed by a key other than the
// primary.
func (r *Ring) NeedsRewrap(ciphertext []byte) bool {
	id, ok := KeyID(ciphertext)
	return !ok || id != r.primary
}

func split(ct []byte) (id string, rest []byte, ok bool) {
	if len(ct) < 2 || ct[0] != version {
		return "", nil, false
	}
	n := int(ct[1])
	if n == 0 || len(ct) < 2+n {
		return "", nil, false
	}
	return string(ct[2 : 2+n]), ct[2+n:], true
}

// associated binds the header (version and key id) and each aad value,
// length-prefixed so ("ab","c") and ("a","bc") differ.
func associated(header []byte, aad []string) []byte {
	n := len(header)
	for _, a := range aad {
		n += 4 + len(a)
	}
	b := make([]byte, 0, n)
	b = append(b, header...)
	for _, a := range aad {
		b = binary.BigEndian.AppendUint32(b, uint32(len(a)))
		b = append(b, a...)
	}
	return b
}
