package seal

import (
	"crypto/hmac"
	"crypto/sha256"
)

// deriveMACKey derives a key for MACs from a sealing key, so the sealing key
// itself never signs anything else.
func deriveMACKey(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("ordertune/seal/mac-key/v1"))
	return m.Sum(nil)
}

// MAC authenticates msg for purpose label with a key derived from the
// primary key and returns that key's id with the HMAC-SHA256. Processes that
// share the key ring (the replicas of one deployment) verify each other's
// messages with VerifyMAC, through a key rotation too.
func (r *Ring) MAC(label string, msg []byte) (id string, mac []byte) {
	return r.primary, macWith(r.macKeys[r.primary], label, msg)
}

// VerifyMAC reports whether mac is MAC's answer for label and msg under the
// ring's key id.
func (r *Ring) VerifyMAC(id, label string, msg, mac []byte) bool {
	k, ok := r.macKeys[id]
	if !ok {
		return false
	}
	return hmac.Equal(macWith(k, label, msg), mac)
}

func macWith(key []byte, label string, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write(msg)
	return m.Sum(nil)
}
