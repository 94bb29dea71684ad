package broker

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// knownSecret is a tenant's decrypted access token secret, kept in memory
// only (like the live session token) so that a new handshake — a renewal,
// a repair after IBKR restarted — saves an RSA private-key operation and
// the encryption key's parse. of digests the sealed columns it was
// decrypted from, so a changed connection (saved again, on any replica, or
// re-sealed) is never served an old secret.
type knownSecret struct {
	of     [32]byte
	secret []byte
}

// matches reports whether k holds a secret decrypted from columns of.
func (k knownSecret) matches(of [32]byte) bool { return len(k.secret) > 0 && k.of == of }

// wipe zeroes the secret.
func (k *knownSecret) wipe() {
	clear(k.secret)
	*k = knownSecret{}
}

// Format prints nothing secret.
func (k knownSecret) Format(f fmt.State, _ rune) { fmt.Fprint(f, "knownSecret{redacted}") }

// secretDigest identifies the sealed columns the access token secret is
// decrypted from (the secret, the encryption key and the signature key,
// which stands in for a missing encryption key): a fresh seal has a fresh
// nonce, so any save or re-seal of the row changes it.
func (r sealedRow) secretDigest() [32]byte {
	h := sha256.New()
	for _, b := range [][]byte{r.atSecret, r.encryptionKey, r.signatureKey} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}
