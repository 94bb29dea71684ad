package ibkr

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testKeys are keys generated at test time (never stored), plus the
// vectors' test keys.
type testKeys struct {
	v           *vectorFile
	sigPKCS1    string // vector signature key, PKCS#1
	encPKCS8    string // vector encryption key, PKCS#8
	small       string // 1024-bit RSA, PKCS#1
	ecPKCS8     string
	ecSEC1      string
	encrypted   string // legacy Proc-Type encrypted PKCS#1
	encPKCS8Enc string // ENCRYPTED PRIVATE KEY label
	cert        string
	prime1024   *big.Int
}

func newTestKeys(t *testing.T) *testKeys {
	t.Helper()
	v := loadVectors(t)
	k := &testKeys{v: v, sigPKCS1: v.Credentials.SignaturePrivateKeyPEM, encPKCS8: v.Credentials.EncryptionPrivateKeyPEM}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	k.small = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)}))
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	k.ecPKCS8 = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	k.ecSEC1 = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))
	sig, err := ParseRSAPrivateKey(k.sigPKCS1)
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 legacy PEM encryption is exactly what users paste.
	blk, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(sig), []byte("pw"), x509.PEMCipherAES256) //nolint:staticcheck
	if err != nil {
		t.Fatal(err)
	}
	k.encrypted = string(pem.EncodeToMemory(blk))
	k.encPKCS8Enc = string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{0x30, 0x03, 0x02, 0x01, 0x01}}))
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"}, NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1e9, 0)}
	cder, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &sig.PublicKey, sig)
	if err != nil {
		t.Fatal(err)
	}
	k.cert = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cder}))
	if k.prime1024, err = rand.Prime(rand.Reader, 1024); err != nil {
		t.Fatal(err)
	}
	return k
}

// mangle helpers reproduce copy-and-paste damage.
func crlf(s string) string        { return strings.ReplaceAll(s, "\n", "\r\n") }
func noFinalNL(s string) string   { return strings.TrimRight(s, "\n") }
func indented(s string) string    { return "  \n\t" + strings.ReplaceAll(s, "\n", "\n    ") + "  \n\n" }
func oneLine(s string) string     { return strings.ReplaceAll(s, "\n", " ") }
func jsonEscaped(s string) string { return strings.ReplaceAll(s, "\n", `\n`) }
func bareBody(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[1:len(lines)-1], "\n")
}

func TestParseRSAPrivateKey(t *testing.T) {
	k := newTestKeys(t)
	pkcs8Sig := func() string {
		key, _ := ParseRSAPrivateKey(k.sigPKCS1)
		der, _ := x509.MarshalPKCS8PrivateKey(key)
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}()
	ok := []struct{ name, in string }{
		{"pkcs1", k.sigPKCS1},
		{"pkcs8", k.encPKCS8},
		{"pkcs8 of the signature key", pkcs8Sig},
		{"crlf", crlf(k.sigPKCS1)},
		{"no final newline", noFinalNL(k.encPKCS8)},
		{"indented and padded", indented(k.sigPKCS1)},
		{"newlines collapsed to spaces", oneLine(k.encPKCS8)},
		{"json-escaped newlines", jsonEscaped(k.sigPKCS1)},
		{"body without BEGIN/END", bareBody(k.encPKCS8)},
		{"key after its certificate", k.cert + k.sigPKCS1},
		{"pkcs8 body under a pkcs1 label", strings.ReplaceAll(strings.ReplaceAll(pkcs8Sig, "BEGIN PRIVATE KEY", "BEGIN RSA PRIVATE KEY"), "END PRIVATE KEY", "END RSA PRIVATE KEY")},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			key, err := ParseRSAPrivateKey(tc.in)
			if err != nil {
				t.Fatalf("ParseRSAPrivateKey: %v", err)
			}
			if key.N.BitLen() != 2048 {
				t.Errorf("bits = %d", key.N.BitLen())
			}
		})
	}

	truncated := k.sigPKCS1[:len(k.sigPKCS1)/2] + "\n-----END RSA PRIVATE KEY-----\n"
	bad := []struct{ name, in, want string }{
		{"empty", "  \n", "the private key is empty"},
		{"garbage", "hello world", "is not a PEM private key"},
		{"encrypted legacy", k.encrypted, "openssl rsa -in key.pem -out key_nopass.pem"},
		{"encrypted pkcs8", k.encPKCS8Enc, "remove the passphrase"},
		{"public key", k.v.Credentials.SignaturePublicKeyPEM, "is a public key (BEGIN PUBLIC KEY)"},
		{"certificate", k.cert, "is a certificate"},
		{"dh params", k.v.Credentials.DHParamPEM, "contains Diffie-Hellman parameters"},
		{"small key", k.small, "is a 1024-bit RSA key; IBKR needs at least 2048 bits"},
		{"ec pkcs8", k.ecPKCS8, "is an EC key"},
		{"ec sec1", k.ecSEC1, "is an EC key"},
		{"missing END", strings.Split(k.sigPKCS1, "-----END")[0], "the -----END RSA PRIVATE KEY----- line is missing"},
		{"truncated", truncated, "is damaged"},
		{"bad base64", "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----", "not valid base64"},
		{"openssh", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----", "OpenSSH"},
		{"too long", strings.Repeat("A", 70000), "is far too long"},
		{"too large a key", "-----BEGIN PRIVATE KEY-----\n" + base64.StdEncoding.EncodeToString(make([]byte, 7000)) + "\n-----END PRIVATE KEY-----", "is too large"},
		{"unknown label", "-----BEGIN FOO-----\nAAAA\n-----END FOO-----", `is a "FOO" PEM block`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRSAPrivateKey(tc.in)
			if err == nil {
				t.Fatal("ParseRSAPrivateKey succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			assertNoSecret(t, err.Error(), tc.in)
		})
	}
}

// assertNoSecret fails when msg repeats any 16-character run of the input's
// base64 lines.
func assertNoSecret(t *testing.T, msg, input string) {
	t.Helper()
	for line := range strings.SplitSeq(input, "\n") {
		line = strings.TrimSpace(line)
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") && strings.Contains(msg, line[:16]) {
			t.Errorf("message %q repeats secret material", msg)
		}
	}
}

func dhPEM(t *testing.T, p *big.Int, g int64) string {
	t.Helper()
	der, err := asn1.Marshal(dhParams{P: p, G: big.NewInt(g)})
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "DH PARAMETERS", Bytes: der}))
}

func TestParseDHPrime(t *testing.T) {
	k := newTestKeys(t)
	want := mustHexInt(t, k.v.Credentials.DHPrimeHex)
	hexP := k.v.Credentials.DHPrimeHex
	var colons []string
	for i := 0; i < len(hexP); i += 2 {
		colons = append(colons, hexP[i:i+2])
	}
	ok := []struct{ name, in string }{
		{"pem", k.v.Credentials.DHParamPEM},
		{"pem crlf indented", indented(crlf(k.v.Credentials.DHParamPEM))},
		{"hex", hexP},
		{"hex upper with 0x", "0x" + strings.ToUpper(hexP)},
		{"hex openssl -text style", "00:" + strings.Join(colons, ":\n    ")},
		{"pem built here, generator 2", dhPEM(t, want, 2)},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseDHPrime(tc.in)
			if err != nil {
				t.Fatalf("ParseDHPrime: %v", err)
			}
			if p.Cmp(want) != 0 {
				t.Error("wrong prime")
			}
		})
	}
	notPrime := new(big.Int).Add(want, big.NewInt(2))
	bad := []struct{ name, in, want string }{
		{"empty", "", "the DH parameters are empty"},
		{"generator 5", dhPEM(t, want, 5), "use generator 5; IBKR requires generator 2"},
		{"1024-bit prime pem", dhPEM(t, k.prime1024, 2), "have a 1024-bit prime; IBKR needs a 2048-bit prime"},
		{"1024-bit prime hex", k.prime1024.Text(16), "have a 1024-bit prime"},
		{"not prime", notPrime.Text(16), "not a prime"},
		{"not hex", "xyz", "neither DH parameters PEM"},
		{"private key pasted", k.sigPKCS1, "contain a key or certificate"},
		{"x9.42", "-----BEGIN X9.42 DH PARAMETERS-----\nAAAA\n-----END X9.42 DH PARAMETERS-----", "X9.42"},
		{"damaged der", "-----BEGIN DH PARAMETERS-----\nAAAA\n-----END DH PARAMETERS-----", "do not parse as PKCS#3"},
		{"missing END", strings.Split(k.v.Credentials.DHParamPEM, "-----END")[0], "line is missing"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDHPrime(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseDHPrime error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseAccessTokenSecret(t *testing.T) {
	k := newTestKeys(t)
	enc, err := ParseRSAPrivateKey(k.encPKCS8)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := ParseRSAPrivateKey(k.sigPKCS1)
	if err != nil {
		t.Fatal(err)
	}
	secret := k.v.Credentials.AccessTokenSecret
	wrapped := ""
	for i := 0; i < len(secret); i += 64 {
		wrapped += secret[i:min(i+64, len(secret))] + "\r\n  "
	}
	for _, in := range []string{secret, wrapped, " " + secret + "\n"} {
		got, err := ParseAccessTokenSecret(in, enc)
		if err != nil {
			t.Fatalf("ParseAccessTokenSecret: %v", err)
		}
		if diff := cmp.Diff(k.v.Credentials.AccessTokenSecretPlainHex, hexString(got)); diff != "" {
			t.Errorf("secret (-want +got):\n%s", diff)
		}
	}
	short := base64.StdEncoding.EncodeToString(mustB64(t, secret)[:200])
	bad := []struct {
		name, in string
		key      *rsa.PrivateKey
		want     string
	}{
		{"empty", "", enc, "the access token secret is empty"},
		{"not base64", strings.Replace(secret, "A", "-", 1), enc, "is not base64"},
		{"bad padding", secret[:len(secret)-1], enc, "not valid base64"},
		{"wrong length", short, enc, "decodes to 200 bytes, but one block of the 2048-bit encryption key is 256 bytes — likely a copy error"},
		{"wrong key", secret, sig, "does not decrypt with the encryption key"},
		{"no key", secret, nil, "without a valid encryption key"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAccessTokenSecret(tc.in, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			if len(tc.in) > 20 && strings.Contains(err.Error(), tc.in[:20]) {
				t.Errorf("message repeats the secret: %v", err)
			}
		})
	}
}

func hexString(b []byte) string { return new(big.Int).SetBytes(b).Text(16) }

func TestParseSimpleFields(t *testing.T) {
	type res struct {
		Out string
		Err string
	}
	run := func(f func(string) (string, error), in string) res {
		out, err := f(in)
		if err != nil {
			return res{Err: err.Error()}
		}
		return res{Out: out}
	}
	tests := []struct {
		name string
		f    func(string) (string, error)
		in   string
		want res
	}{
		{"consumer ok", ParseConsumerKey, " QAVECTORA ", res{Out: "QAVECTORA"}},
		{"consumer testcons", ParseConsumerKey, "TESTCONS", res{Out: "TESTCONS"}},
		{"consumer empty", ParseConsumerKey, "", res{Err: "the consumer key is empty: it is the 9-letter key from IBKR's self-service OAuth portal"}},
		{"consumer short", ParseConsumerKey, "ABCDEFGH", res{Err: "the consumer key has 8 characters; IBKR consumer keys are exactly 9 letters A-Z"}},
		{"consumer lower", ParseConsumerKey, "qavectora", res{Err: "the consumer key must be upper-case letters A-Z, exactly as IBKR's portal shows it"}},
		{"consumer digit", ParseConsumerKey, "QAVECTOR1", res{Err: "the consumer key must be 9 letters A-Z (no digits, spaces or punctuation)"}},
		{"token ok", ParseAccessToken, "eb31c080cc0bd45b2f55", res{Out: "eb31c080cc0bd45b2f55"}},
		{"token upper kept verbatim", ParseAccessToken, "EB31C080CC0BD45B2F55", res{Out: "EB31C080CC0BD45B2F55"}},
		{"token empty", ParseAccessToken, " ", res{Err: "the access token is empty: it is generated in IBKR's self-service OAuth portal"}},
		{"token not hex", ParseAccessToken, "eb31c080cc0bd45b2f5z", res{Err: "the access token must contain hex digits only (0-9, a-f), as shown in IBKR's portal"}},
		{"token too long", ParseAccessToken, strings.Repeat("a", 65), res{Err: "the access token has 65 characters; IBKR access tokens are short hex strings (20 characters) — was the access token secret pasted here?"}},
		{"account paper", ParseAccountID, "DU1234567", res{Out: "DU1234567"}},
		{"account live lower", ParseAccountID, " u7654321 ", res{Out: "U7654321"}},
		{"account empty", ParseAccountID, "", res{Err: "the account id is empty: it looks like U1234567 (live) or DU1234567 (paper)"}},
		{"account bad prefix", ParseAccountID, "F1234567", res{Err: "the account id must be U followed by digits (live) or DU followed by digits (paper), e.g. DU1234567"}},
		{"account no digits", ParseAccountID, "DU", res{Err: "the account id must be U followed by digits (live) or DU followed by digits (paper), e.g. DU1234567"}},
		{"account letters", ParseAccountID, "DU12A4567", res{Err: "the account id must be U followed by digits (live) or DU followed by digits (paper), e.g. DU1234567"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, run(tc.f, tc.in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRealm(t *testing.T) {
	tests := []struct {
		realm, consumer, want string
		wantErr               bool
	}{
		{"", "QAVECTORA", "limited_poa", false},
		{"limited_poa", "QAVECTORA", "limited_poa", false},
		{"test_realm", "QAVECTORA", "", true},
		{"", "TESTCONS", "test_realm", false},
		{"limited_poa", "TESTCONS", "", true},
	}
	for _, tc := range tests {
		got, err := ParseRealm(tc.realm, tc.consumer)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseRealm(%q, %q) = %q, %v; want %q, err %v", tc.realm, tc.consumer, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseCredentialsCollectsEveryProblem(t *testing.T) {
	k := newTestKeys(t)
	in := k.v.Credentials.CredentialsInput
	in.ConsumerKey = "bad"
	in.AccessToken = ""
	in.AccountID = "X1"
	in.SignaturePrivateKeyPEM = k.v.Credentials.SignaturePublicKeyPEM
	in.EncryptionPrivateKeyPEM = k.small
	in.AccessTokenSecret = "%%%"
	in.DHParamPEM = dhPEM(t, mustHexInt(t, in.DHPrimeHex), 5)
	in.DHPrimeHex = ""
	_, err := ParseCredentials(in)
	ce, ok := err.(*CredentialsError)
	if !ok {
		t.Fatalf("error %T %v, want *CredentialsError", err, err)
	}
	var fields []string
	for _, fe := range ce.FieldErrors {
		fields = append(fields, fe.Field)
		assertNoSecret(t, fe.Message, k.v.Credentials.SignaturePublicKeyPEM)
	}
	want := []string{"consumer_key", "access_token", "account_id", "signature_private_key_pem", "encryption_private_key_pem", "access_token_secret", "dh_param_pem"}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}

func TestParseCredentialsCases(t *testing.T) {
	k := newTestKeys(t)
	base := k.v.Credentials.CredentialsInput
	tests := []struct {
		name   string
		modify func(*CredentialsInput)
		want   []FieldError // nil: success
		check  func(*testing.T, *Credentials)
	}{
		{"vector set", func(*CredentialsInput) {}, nil, func(t *testing.T, c *Credentials) {
			if c.EncryptionKeyDefaulted || c.Realm != RealmLimitedPOA || !c.IsPaper() {
				t.Errorf("got %v defaulted=%v paper=%v", c, c.EncryptionKeyDefaulted, c.IsPaper())
			}
		}},
		{"encryption key defaults to signature key", func(in *CredentialsInput) { in.EncryptionPrivateKeyPEM = "" },
			[]FieldError{{"access_token_secret", "the access token secret does not decrypt with the encryption key: use the private key whose public key you uploaded as the encryption key for this consumer, and the secret shown for the current access token"}}, nil},
		{"explicit wrong realm", func(in *CredentialsInput) { in.Realm = RealmTest },
			[]FieldError{{"realm", `the realm must be "limited_poa" for self-service consumers; "test_realm" is only for IBKR's test consumer TESTCONS (or leave it empty)`}}, nil},
		{"no dh", func(in *CredentialsInput) { in.DHParamPEM, in.DHPrimeHex = "", "" },
			[]FieldError{{"dh_param_pem", "the DH parameters are missing: paste the openssl dhparam 2048 output (or give the prime in hex as dh_prime_hex)"}}, nil},
		{"dh fields disagree", func(in *CredentialsInput) { in.DHPrimeHex = k.prime1024.Text(16) },
			[]FieldError{{"dh_prime_hex", "the DH parameters have a 1024-bit prime; IBKR needs a 2048-bit prime (openssl dhparam 2048)"}}, nil},
		{"encryption key is the signature key", func(in *CredentialsInput) { in.EncryptionPrivateKeyPEM = in.SignaturePrivateKeyPEM },
			[]FieldError{{"access_token_secret", "the access token secret does not decrypt with the encryption key: use the private key whose public key you uploaded as the encryption key for this consumer, and the secret shown for the current access token"}}, nil},
		{"secret damaged while key bad", func(in *CredentialsInput) { in.EncryptionPrivateKeyPEM = k.ecPKCS8; in.AccessTokenSecret = "abc" },
			[]FieldError{
				{"encryption_private_key_pem", "the private key is an EC key; IBKR needs an RSA key of at least 2048 bits (openssl genrsa -out key.pem 2048)"},
				{"access_token_secret", "the access token secret is not valid base64 (3 characters, expected a multiple of 4 with = only at the end) — likely a copy error"},
			}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := base
			tc.modify(&in)
			c, err := ParseCredentials(in)
			var got []FieldError
			if err != nil {
				ce, ok := err.(*CredentialsError)
				if !ok {
					t.Fatalf("error %T", err)
				}
				got = ce.FieldErrors
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("field errors (-want +got):\n%s", diff)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestSecretsNeverFormatted(t *testing.T) {
	v := loadVectors(t)
	c := vectorCredentials(t, v)
	tok := LiveSessionToken{Value: "U3IkogIkMDz+ZF1kyjvxKJFSCgs=", Expires: time.Unix(1714575860, 0)}
	sess, err := ResumeSession(Options{}, "QAVECTORA", "eb31c080cc0bd45b2f55", RealmLimitedPOA, tok)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		sprint("%v %+v %#v %s", sess, sess, sess, sess),
		sprint("%v %+v %#v %s", c, c, c, c),
		sprint("%v %+v", *c, struct{ C Credentials }{*c}),
		sprint("%v %+v %#v", v.Credentials.CredentialsInput, v.Credentials.CredentialsInput, &v.Credentials.CredentialsInput),
		sprint("%v %+v %#v %s", tok, tok, tok, tok),
	} {
		for _, secret := range []string{v.Credentials.AccessTokenSecret[:20], v.Credentials.Prepend[:16], "MIIE", tok.Value[:10]} {
			if strings.Contains(s, secret) {
				t.Errorf("formatted %q contains secret %q", s, secret)
			}
		}
	}
}

func sprint(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// TestParseSavedCredentials: a saved set parses to the same credentials;
// with the secret an earlier parse decrypted, the encryption key is not
// even read (a damaged one does not matter) while the other fields are
// still checked; the DH prime is not tested for primality (an odd 2048-bit
// composite passes here and fails ParseCredentials), but its size is.
func TestParseSavedCredentials(t *testing.T) {
	k := newTestKeys(t)
	in := k.v.Credentials.CredentialsInput
	full, err := ParseCredentials(in)
	if err != nil {
		t.Fatal(err)
	}
	same := func(what string, got *Credentials, withEncKey bool) {
		t.Helper()
		if !bytes.Equal(got.AccessTokenSecret, full.AccessTokenSecret) || (got.EncryptionKey != nil) != withEncKey ||
			!got.SignatureKey.Equal(full.SignatureKey) || got.DHPrime.Cmp(full.DHPrime) != 0 ||
			got.ConsumerKey != full.ConsumerKey || got.AccessToken != full.AccessToken || got.AccountID != full.AccountID {
			t.Errorf("%s: %v, want %v", what, got, full)
		}
	}
	got, err := ParseSavedCredentials(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	same("no secret known", got, true)

	secret := bytes.Clone(full.AccessTokenSecret)
	damaged := in
	damaged.EncryptionPrivateKeyPEM = "not a key"
	if got, err = ParseSavedCredentials(damaged, secret); err != nil {
		t.Fatal(err)
	}
	same("secret known", got, false)

	damaged.AccountID = "X1"
	_, err = ParseSavedCredentials(damaged, secret)
	ce, ok := err.(*CredentialsError)
	if !ok || len(ce.FieldErrors) != 1 || ce.FieldErrors[0].Field != "account_id" {
		t.Errorf("bad account id: err %v, want one account_id field error", err)
	}

	composite := in
	p := new(big.Int).Set(full.DHPrime)
	p.Add(p, big.NewInt(2)) // odd and 2048 bits; not prime, as checked next
	if p.ProbablyPrime(0) {
		t.Fatal("p+2 is prime; pick another composite")
	}
	composite.DHPrimeHex, composite.DHParamPEM = p.Text(16), ""
	if _, err := ParseCredentials(composite); err == nil {
		t.Error("ParseCredentials accepted a composite DH prime")
	}
	if got, err = ParseSavedCredentials(composite, nil); err != nil || got.DHPrime.Cmp(p) != 0 {
		t.Errorf("ParseSavedCredentials with an unchecked prime: %v, %v", got, err)
	}
	composite.DHPrimeHex = p.Rsh(p, 1).Text(16)
	if _, err := ParseSavedCredentials(composite, nil); err == nil {
		t.Error("ParseSavedCredentials accepted a 2047-bit prime")
	}
}
