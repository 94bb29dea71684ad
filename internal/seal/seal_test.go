package seal

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func ring(t *testing.T, spec string) *Ring {
	t.Helper()
	r, err := ParseRing(spec)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRoundTripAndBinding(t *testing.T) {
	k1, _ := GenerateKey("k1")
	r := ring(t, k1)
	secret := []byte("-----BEGIN RSA PRIVATE KEY----- not really")
	ct, err := r.Seal(secret, "user-a", "signature_key")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, secret[:20]) {
		t.Fatal("ciphertext contains the plaintext")
	}
	got, err := r.Open(ct, "user-a", "signature_key")
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	ct2, _ := r.Seal(secret, "user-a", "signature_key")
	if bytes.Equal(ct, ct2) {
		t.Fatal("two seals of the same plaintext are equal: nonce reuse")
	}
	for _, aad := range [][]string{
		{"user-b", "signature_key"},     // moved to another user's row
		{"user-a", "encryption_key"},    // moved to another field
		{"user-asignature_key"},         // same bytes, other split
		{"user-", "asignature_key"},     // same concatenation
		{"user-a", "signature_key", ""}, // extra empty part
		{},
	} {
		if _, err := r.Open(ct, aad...); !errors.Is(err, ErrOpen) {
			t.Errorf("Open with aad %q: err = %v, want ErrOpen", aad, err)
		}
	}
}

func TestTamperingFails(t *testing.T) {
	r := RandomRing("k1")
	ct, _ := r.Seal([]byte("token secret"), "u", "f")
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		if _, err := r.Open(bad, "u", "f"); err == nil {
			t.Fatalf("flipping a bit at byte %d still opens", i)
		}
	}
	for _, short := range [][]byte{nil, {1}, ct[:5], ct[:len(ct)-1]} {
		if _, err := r.Open(short, "u", "f"); !errors.Is(err, ErrOpen) {
			t.Errorf("truncated ciphertext (%d bytes): err = %v", len(short), err)
		}
	}
}

func TestRotation(t *testing.T) {
	k1, _ := GenerateKey("k1")
	k2, _ := GenerateKey("k2")
	old := ring(t, k1)
	ct, _ := old.Seal([]byte("s"), "u", "f")

	rotated := ring(t, k2+","+k1) // new primary first, old still opens
	if rotated.Primary() != "k2" || !rotated.NeedsRewrap(ct) {
		t.Fatalf("primary %q, needs rewrap %v", rotated.Primary(), rotated.NeedsRewrap(ct))
	}
	plain, err := rotated.Open(ct, "u", "f")
	if err != nil {
		t.Fatal(err)
	}
	re, _ := rotated.Seal(plain, "u", "f")
	if id, _ := KeyID(re); id != "k2" || rotated.NeedsRewrap(re) {
		t.Fatalf("re-sealed under %q", id)
	}
	retired := ring(t, k2) // old key gone: old ciphertexts no longer open
	if _, err := retired.Open(ct, "u", "f"); !errors.Is(err, ErrOpen) {
		t.Fatalf("old ciphertext opened without its key: %v", err)
	}
	if _, err := retired.Open(re, "u", "f"); err != nil {
		t.Fatal(err)
	}
}

func TestParseRingErrorsHideKeys(t *testing.T) {
	tests := []string{
		"",
		"k1",
		"k1:short",
		"bad id!:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"k1:c2VjcmV0LWtleS1tYXRlcmlhbA==", // valid base64, wrong length
	}
	for _, spec := range tests {
		_, err := ParseRing(spec)
		if err == nil {
			t.Errorf("ParseRing(%q) accepted", spec)
			continue
		}
		if strings.Contains(err.Error(), "c2VjcmV0") || strings.Contains(err.Error(), "AAAAAAAA") {
			t.Errorf("error leaks key material: %v", err)
		}
	}
}

func FuzzOpen(f *testing.F) {
	r := RandomRing("k1")
	ct, _ := r.Seal([]byte("seed"), "u", "f")
	f.Add(ct)
	f.Add([]byte{1, 2, 'k', '1'})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = KeyID(b)
		if _, err := r.Open(b, "u", "f"); err == nil && !bytes.Equal(b, ct) {
			t.Fatal("opened a forged ciphertext")
		}
	})
}

func BenchmarkSealOpen(b *testing.B) {
	r := RandomRing("k1")
	pt := bytes.Repeat([]byte("x"), 1700) // about one PEM key
	b.ReportAllocs()
	for b.Loop() {
		ct, _ := r.Seal(pt, "user", "field")
		if _, err := r.Open(ct, "user", "field"); err != nil {
			b.Fatal(err)
		}
	}
}
