package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// A database owner can still rewrite the whole trail: switch the triggers
// off, delete the newest rows and rewind audit_chain_head, and the chain
// verifies again. Checkpoints close that hole from outside the database:
// the sealer signs the chain head (Ed25519, with a key the database never
// sees) every so often and appends it to a file and the log. Verify with
// the checkpoints then fails when the chain no longer reaches a signed
// head, or reaches it with another hash.

// Checkpoint is a signed statement that the chain's entry Seq had hash
// Hash at time At.
type Checkpoint struct {
	Seq  int64     `json:"seq"`
	Hash string    `json:"hash"` // hex
	At   time.Time `json:"at"`
	Key  string    `json:"key"` // the signing key's id (KeyID)
	Sig  string    `json:"sig"` // base64 Ed25519 signature over message()
}

// message is what a checkpoint's signature covers: a domain label, the
// sequence number, the hash and the time in microseconds.
func (c Checkpoint) message() ([]byte, error) {
	h, err := hex.DecodeString(c.Hash)
	if err != nil || len(h) != sha256.Size {
		return nil, errors.New("hash is not 32 hex-encoded bytes")
	}
	b := []byte("ordertune audit checkpoint v1\n")
	b = binary.BigEndian.AppendUint64(b, uint64(c.Seq))
	b = append(b, h...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.At.UnixMicro()))
	return b, nil
}

// String names the checkpoint in a verification problem.
func (c Checkpoint) String() string {
	return fmt.Sprintf("checkpoint of entry %d signed at %s", c.Seq, c.At.UTC().Format(time.RFC3339))
}

// Signer signs checkpoints with an Ed25519 key kept apart from the
// database and from the master keys.
type Signer struct {
	key ed25519.PrivateKey
	id  string
}

// ParseSigningKey reads a signing key as GenerateSigningKey writes it: the
// base64 of a 32-byte Ed25519 seed.
func ParseSigningKey(s string) (*Signer, error) {
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("audit signing key: want the base64 of 32 bytes (ordertune keys audit-generate makes one)")
	}
	key := ed25519.NewKeyFromSeed(seed)
	return &Signer{key: key, id: KeyID(key.Public().(ed25519.PublicKey))}, nil
}

// GenerateSigningKey returns a new signing key and its public key, both
// base64.
func GenerateSigningKey() (private, public string, err error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	return base64.StdEncoding.EncodeToString(key.Seed()), base64.StdEncoding.EncodeToString(pub), nil
}

// PublicKey returns the key that verifies the signer's checkpoints.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// ParsePublicKey reads a base64 Ed25519 public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("audit public key: want the base64 of 32 bytes")
	}
	return ed25519.PublicKey(b), nil
}

// KeyID names a public key in checkpoints: the first 8 bytes of its
// SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

// Sign returns the signed checkpoint of entry seq with hash at time at.
func (s *Signer) Sign(seq int64, hash []byte, at time.Time) Checkpoint {
	c := Checkpoint{Seq: seq, Hash: hex.EncodeToString(hash), At: at.UTC().Truncate(time.Microsecond), Key: s.id}
	msg, err := c.message()
	if err != nil {
		panic("audit: checkpoint of a malformed hash: " + err.Error())
	}
	c.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(s.key, msg))
	return c
}

// Valid reports whether c is signed by pub.
func (c Checkpoint) Valid(pub ed25519.PublicKey) bool {
	msg, err := c.message()
	if err != nil || c.Seq < 0 || len(pub) != ed25519.PublicKeySize {
		return false
	}
	sig, err := base64.StdEncoding.DecodeString(c.Sig)
	return err == nil && ed25519.Verify(pub, msg, sig)
}

// AppendCheckpoint appends c as one JSON line to the file at path,
// creating it, and waits for the disk. The file is only ever appended to;
// operators can make it append-only for the server's user too (chattr +a)
// or ship it off the machine.
func AppendCheckpoint(path string, c Checkpoint) error {
	line, err := json.Marshal(c)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("audit checkpoints: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit checkpoints: %w", err)
	}
	return nil
}

// maxCheckpointLine bounds one line of a checkpoints file; a real one is
// under 250 bytes.
const maxCheckpointLine = 4096

// ParseCheckpoints reads a checkpoints file: one JSON checkpoint per line,
// blank lines ignored. Each line must name a key, a non-negative sequence
// number and a 32-byte hash; signatures are checked by Verify.
func ParseCheckpoints(r io.Reader) ([]Checkpoint, error) {
	var list []Checkpoint
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxCheckpointLine)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var c Checkpoint
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil || dec.More() {
			return nil, fmt.Errorf("checkpoints line %d: not a checkpoint", n)
		}
		if _, err := c.message(); err != nil || c.Seq < 0 || c.Sig == "" || c.Key == "" {
			return nil, fmt.Errorf("checkpoints line %d: incomplete checkpoint", n)
		}
		list = append(list, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	return list, nil
}
