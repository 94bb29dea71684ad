package broker

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ordertune/ordertune/internal/errs"
)

// FuzzParseInput: any credential set a client sends is either accepted or
// refused with per-field errors under the REST field names; nothing
// panics and no message echoes a secret field's content.
func FuzzParseInput(f *testing.F) {
	f.Add("TESTCONS", "abcdef0123", "c2VjcmV0", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----", "", "ffff", "DU1234567")
	f.Add("", "", "", "", "", "", "")
	f.Add("ABCDEFGHI", "zz", "====", "-----BEGIN DH PARAMETERS-----\nMAA=\n-----END DH PARAMETERS-----", "garbage", "-----BEGIN DH PARAMETERS-----", "U1")
	allowed := map[string]bool{"consumer_key": true, "access_token": true, "access_token_secret": true,
		"signature_key_pem": true, "encryption_key_pem": true, "dh_params": true, "account_id": true, "realm": true}
	f.Fuzz(func(t *testing.T, ck, at, secret, sig, enc, dh, acct string) {
		in := Input{ConsumerKey: ck, AccessToken: at, AccessTokenSecret: secret, SignatureKeyPEM: sig, EncryptionKeyPEM: enc, DHParams: dh, AccountID: acct}
		creds, err := parseInput(in)
		if err == nil {
			if creds == nil {
				t.Fatal("no credentials and no error")
			}
			return
		}
		e := errs.As(err)
		if e == nil || e.Code != errs.Invalid || len(e.Fields) == 0 {
			t.Fatalf("error %v: want invalid_argument with fields", err)
		}
		for _, fe := range e.Fields {
			if !allowed[fe.Field] {
				t.Errorf("unknown field %q", fe.Field)
			}
			for _, s := range []string{secret, sig, enc} {
				if len(s) >= 16 && strings.Contains(fe.Message, s) {
					t.Errorf("message for %s echoes a secret input", fe.Field)
				}
			}
		}
	})
}

// FuzzMaskAccountID: a masked id never shows more than four trailing
// characters of the id.
func FuzzMaskAccountID(f *testing.F) {
	for _, s := range []string{"U1234567", "DU7654321", "", "DU", "U1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		m := MaskAccountID(id)
		if !strings.HasPrefix(m, "U•••") && !strings.HasPrefix(m, "DU•••") {
			t.Fatalf("MaskAccountID(%q) = %q", id, m)
		}
		shown := m[strings.Index(m, "•••")+len("•••"):]
		if len(shown) > 4 {
			t.Errorf("MaskAccountID(%q) shows %q", id, shown)
		}
		if utf8.ValidString(id) && len(id) > 6 && strings.Contains(m, id) {
			t.Errorf("MaskAccountID(%q) = %q contains the id", id, m)
		}
	})
}
