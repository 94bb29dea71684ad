package ibkr

import (
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Realms IBKR uses in the Authorization header.
const (
	// RealmLimitedPOA is the realm of every self-service consumer, paper or live.
	RealmLimitedPOA = "limited_poa"
	// RealmTest is the realm of IBKR's public test consumer TESTCONS only.
	RealmTest = "test_realm"
	// TestConsumerKey is IBKR's public test consumer.
	TestConsumerKey = "TESTCONS"
)

// CredentialsInput is a credential set as the user supplies it: the fields of
// a credentials FILE (shared/API.md), strings exactly as pasted.
type CredentialsInput struct {
	ConsumerKey             string `json:"consumer_key"`
	AccessToken             string `json:"access_token"`
	AccessTokenSecret       string `json:"access_token_secret"`
	SignaturePrivateKeyPEM  string `json:"signature_private_key_pem"`
	EncryptionPrivateKeyPEM string `json:"encryption_private_key_pem"`
	DHParamPEM              string `json:"dh_param_pem"`
	DHPrimeHex              string `json:"dh_prime_hex"`
	Realm                   string `json:"realm"`
	AccountID               string `json:"account_id"`
}

// Format prints the non-secret fields only, so that an input logged by
// mistake never leaks a key or the access token secret.
func (in CredentialsInput) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "CredentialsInput{consumer_key:%q account_id:%q secrets:redacted}", in.ConsumerKey, in.AccountID)
}

// Credentials is a parsed and checked credential set, ready for the live
// session token handshake. It holds secret material: keep it only as long as
// the handshake needs it.
type Credentials struct {
	ConsumerKey string
	AccessToken string
	Realm       string
	AccountID   string
	// SignatureKey signs the live session token request.
	SignatureKey *rsa.PrivateKey
	// EncryptionKey decrypted the access token secret.
	EncryptionKey *rsa.PrivateKey
	// EncryptionKeyDefaulted reports whether the encryption key was left empty
	// and the signature key stands in for it (the form should say so).
	EncryptionKeyDefaulted bool
	// AccessTokenSecret is the decrypted access token secret: its hex is the
	// LST base-string prepend, its bytes the LST's HMAC message.
	AccessTokenSecret []byte
	// DHPrime is the 2048-bit prime p; the generator is always 2.
	DHPrime *big.Int
}

// Format prints the non-secret fields only (a value receiver, so that a
// Credentials value prints redacted too).
func (c Credentials) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "Credentials{consumer_key:%q realm:%q account_id:%q secrets:redacted}", c.ConsumerKey, c.Realm, c.AccountID)
}

// IsPaper reports whether the account id names a paper account (DU…).
func (c *Credentials) IsPaper() bool { return strings.HasPrefix(c.AccountID, "DU") }

// FieldError is one problem with one input field; Field is the JSON name of
// the field in CredentialsInput.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// CredentialsError lists every problem ParseCredentials found, so the user
// can fix them all at once.
type CredentialsError struct {
	FieldErrors []FieldError
}

// Error joins the field problems into one line.
func (e *CredentialsError) Error() string {
	parts := make([]string, len(e.FieldErrors))
	for i, fe := range e.FieldErrors {
		parts[i] = fe.Field + ": " + fe.Message
	}
	return "invalid IBKR credentials: " + strings.Join(parts, "; ")
}

// ParseConsumerKey checks a consumer key: nine upper-case letters chosen in
// IBKR's self-service portal, or IBKR's test consumer TESTCONS. Surrounding
// whitespace is dropped; the case is not changed because IBKR compares keys
// verbatim.
func ParseConsumerKey(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", errors.New("the consumer key is empty: it is the 9-letter key from IBKR's self-service OAuth portal")
	case s == TestConsumerKey:
		return s, nil
	case len(s) != 9:
		return "", fmt.Errorf("the consumer key has %d characters; IBKR consumer keys are exactly 9 letters A-Z", len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			return "", errors.New("the consumer key must be upper-case letters A-Z, exactly as IBKR's portal shows it")
		}
		if c < 'A' || c > 'Z' {
			return "", errors.New("the consumer key must be 9 letters A-Z (no digits, spaces or punctuation)")
		}
	}
	return s, nil
}

// ParseAccessToken checks an access token. IBKR's tokens are hex (20
// lower-case digits in every example); we accept hex digits of either case,
// at most 64 of them, and keep the token exactly as entered because it is sent
// verbatim as oauth_token.
func ParseAccessToken(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", errors.New("the access token is empty: it is generated in IBKR's self-service OAuth portal")
	case len(s) > 64:
		return "", fmt.Errorf("the access token has %d characters; IBKR access tokens are short hex strings (20 characters) — was the access token secret pasted here?", len(s))
	case !isHex(s):
		return "", errors.New("the access token must contain hex digits only (0-9, a-f), as shown in IBKR's portal")
	}
	return s, nil
}

// ParseAccountID checks an IBKR account id: "U" (live) or "DU" (paper)
// followed by digits. Letters are upper-cased; the id is not a secret.
func ParseAccountID(s string) (string, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	digits, ok := strings.CutPrefix(s, "DU")
	if !ok {
		digits, ok = strings.CutPrefix(s, "U")
	}
	switch {
	case s == "":
		return "", errors.New("the account id is empty: it looks like U1234567 (live) or DU1234567 (paper)")
	case !ok || digits == "" || len(digits) > 16 || strings.Trim(digits, "0123456789") != "":
		return "", errors.New("the account id must be U followed by digits (live) or DU followed by digits (paper), e.g. DU1234567")
	}
	return s, nil
}

// RealmFor returns the realm IBKR expects for a consumer key.
func RealmFor(consumerKey string) string {
	if consumerKey == TestConsumerKey {
		return RealmTest
	}
	return RealmLimitedPOA
}

// ParseRealm checks an explicitly given realm against the consumer key; an
// empty realm means the one the consumer key implies.
func ParseRealm(realm, consumerKey string) (string, error) {
	want := RealmFor(consumerKey)
	realm = strings.TrimSpace(realm)
	if realm == "" || realm == want {
		return want, nil
	}
	if want == RealmTest {
		return "", errors.New(`the realm must be "test_realm" for IBKR's test consumer TESTCONS (or leave it empty)`)
	}
	return "", errors.New(`the realm must be "limited_poa" for self-service consumers; "test_realm" is only for IBKR's test consumer TESTCONS (or leave it empty)`)
}

// ParseAccessTokenSecret decodes the access token secret shown by IBKR's
// portal (base64 of one RSA PKCS#1 v1.5 block encrypted to the encryption
// key) and decrypts it. Whitespace and line breaks are ignored.
func ParseAccessTokenSecret(b64 string, encryptionKey *rsa.PrivateKey) ([]byte, error) {
	ct, err := decodeAccessTokenSecret(b64)
	if err != nil {
		return nil, err
	}
	if encryptionKey == nil {
		return nil, errors.New("the access token secret cannot be checked without a valid encryption key")
	}
	if size := encryptionKey.Size(); len(ct) != size {
		return nil, fmt.Errorf("the access token secret decodes to %d bytes, but one block of the %d-bit encryption key is %d bytes — likely a copy error (part of the secret missing or extra text pasted)",
			len(ct), encryptionKey.N.BitLen(), size)
	}
	secret, err := rsa.DecryptPKCS1v15(nil, encryptionKey, ct)
	if err != nil || len(secret) == 0 {
		return nil, errors.New("the access token secret does not decrypt with the encryption key: use the private key whose public key you uploaded as the encryption key for this consumer, and the secret shown for the current access token")
	}
	return secret, nil
}

// decodeAccessTokenSecret checks the base64 form alone (no key needed).
func decodeAccessTokenSecret(b64 string) ([]byte, error) {
	s := stripSpace(strings.ReplaceAll(strings.TrimSpace(b64), `\n`, ""))
	if s == "" {
		return nil, errors.New("the access token secret is empty: it is the long base64 text IBKR's portal shows once with the access token")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, errors.New("the access token secret is not base64: it may only contain A-Z, a-z, 0-9, +, / and =")
		}
	}
	ct, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("the access token secret is not valid base64 (%d characters, expected a multiple of 4 with = only at the end) — likely a copy error", len(s))
	}
	return ct, nil
}

// ParseCredentials parses and checks every field of in and reports all the
// problems at once as a *CredentialsError. An empty encryption key defaults to
// the signature key; the realm follows the consumer key.
func ParseCredentials(in CredentialsInput) (*Credentials, error) {
	return parseCredentials(in, nil, true)
}

// ParseSavedCredentials is ParseCredentials for a credential set that
// ParseCredentials accepted when it was saved and that cannot have changed
// since (it was sealed): the DH prime's primality test, the costliest step
// of a parse (a Baillie-PSW test of a 2048-bit number, several RSA
// private-key operations' worth), is not repeated; the prime must still be
// an odd number of 2048 bits. secret, when not nil, is the access token
// secret an earlier parse decrypted from this same input: it is used as it
// is, and the encryption key is neither parsed nor used (an RSA private-key
// operation saved), so the result's EncryptionKey is nil. Saving and Test
// Connection, which check what a user typed, use ParseCredentials.
func ParseSavedCredentials(in CredentialsInput, secret []byte) (*Credentials, error) {
	return parseCredentials(in, secret, false)
}

// parseCredentials is ParseCredentials, taking the decrypted access token
// secret from known when it is not nil, and testing the DH prime for
// primality when checkPrime is set.
func parseCredentials(in CredentialsInput, known []byte, checkPrime bool) (*Credentials, error) {
	var fes []FieldError
	add := func(field string, err error) {
		fes = append(fes, FieldError{Field: field, Message: err.Error()})
	}
	c := &Credentials{}
	var err error
	if c.ConsumerKey, err = ParseConsumerKey(in.ConsumerKey); err != nil {
		add("consumer_key", err)
	}
	if c.AccessToken, err = ParseAccessToken(in.AccessToken); err != nil {
		add("access_token", err)
	}
	if c.ConsumerKey != "" {
		if c.Realm, err = ParseRealm(in.Realm, c.ConsumerKey); err != nil {
			add("realm", err)
		}
	}
	if c.AccountID, err = ParseAccountID(in.AccountID); err != nil {
		add("account_id", err)
	}
	if c.SignatureKey, err = ParseRSAPrivateKey(in.SignaturePrivateKeyPEM); err != nil {
		add("signature_private_key_pem", err)
	}
	encOK := true
	if known != nil {
		c.AccessTokenSecret = known
		c.EncryptionKeyDefaulted = strings.TrimSpace(in.EncryptionPrivateKeyPEM) == ""
	} else if strings.TrimSpace(in.EncryptionPrivateKeyPEM) == "" {
		c.EncryptionKey, c.EncryptionKeyDefaulted = c.SignatureKey, true
		encOK = c.SignatureKey != nil
	} else if c.EncryptionKey, err = ParseRSAPrivateKey(in.EncryptionPrivateKeyPEM); err != nil {
		add("encryption_private_key_pem", err)
		encOK = false
	}
	switch {
	case known != nil:
		// Decrypted before, from this same input.
	case encOK:
		if c.AccessTokenSecret, err = ParseAccessTokenSecret(in.AccessTokenSecret, c.EncryptionKey); err != nil {
			add("access_token_secret", err)
		}
	default:
		// Without a usable key, report what can be checked of the form alone.
		if _, err = decodeAccessTokenSecret(in.AccessTokenSecret); err != nil {
			add("access_token_secret", err)
		}
	}
	c.DHPrime, err = parseDHFields(in.DHParamPEM, in.DHPrimeHex, checkPrime)
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fes = append(fes, *fe)
		}
	}
	if len(fes) > 0 {
		return nil, &CredentialsError{FieldErrors: fes}
	}
	return c, nil
}

// Error lets a FieldError travel as an error inside this package.
func (fe *FieldError) Error() string { return fe.Field + ": " + fe.Message }

// parseDHFields accepts the prime from either DH field; both given must agree.
func parseDHFields(pemText, hexText string, checkPrime bool) (*big.Int, error) {
	hasPEM, hasHex := strings.TrimSpace(pemText) != "", strings.TrimSpace(hexText) != ""
	switch {
	case !hasPEM && !hasHex:
		return nil, &FieldError{Field: "dh_param_pem", Message: "the DH parameters are missing: paste the openssl dhparam 2048 output (or give the prime in hex as dh_prime_hex)"}
	case hasPEM && !hasHex:
		p, err := parseDHPrime(pemText, checkPrime)
		if err != nil {
			return nil, &FieldError{Field: "dh_param_pem", Message: err.Error()}
		}
		return p, nil
	case hasHex && !hasPEM:
		p, err := parseDHPrime(hexText, checkPrime)
		if err != nil {
			return nil, &FieldError{Field: "dh_prime_hex", Message: err.Error()}
		}
		return p, nil
	}
	p, err := parseDHPrime(pemText, checkPrime)
	if err != nil {
		return nil, &FieldError{Field: "dh_param_pem", Message: err.Error()}
	}
	q, err := parseDHPrime(hexText, checkPrime)
	if err != nil {
		return nil, &FieldError{Field: "dh_prime_hex", Message: err.Error()}
	}
	if p.Cmp(q) != 0 {
		return nil, &FieldError{Field: "dh_prime_hex", Message: "the DH prime in hex differs from the prime in the DH parameters PEM: give only one of them"}
	}
	return p, nil
}
