package ibkrsim

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
)

// rfc3526Group14 is the 2048-bit MODP prime of RFC 3526 §3 (generator 2).
const rfc3526Group14 = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1" +
	"29024E088A67CC74020BBEA63B139B22514A08798E3404DD" +
	"EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245" +
	"E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
	"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D" +
	"C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F" +
	"83655D23DCA3AD961C62F356208552BB9ED529077096966D" +
	"670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B" +
	"E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9" +
	"DE2BCBF6955817183995497CEA956AE515D2261898FA0510" +
	"15728E5A8AACAA68FFFFFFFFFFFFFFFF"

// RFC3526Group14 returns the 2048-bit MODP prime of RFC 3526, the simulator's
// default DH group.
func RFC3526Group14() *big.Int {
	p, _ := new(big.Int).SetString(rfc3526Group14, 16)
	return p
}

// RegisterOptions says how Register makes a consumer. Zero fields are
// generated.
type RegisterOptions struct {
	// AccountID is the brokerage account (default: a fresh DU + 7 digits).
	AccountID string
	// ConsumerKey defaults to 9 random upper-case letters.
	ConsumerKey string
	// DHPrime defaults to RFC 3526 group 14.
	DHPrime *big.Int
	// SignatureKey and EncryptionKey default to fresh RSA-2048 keys; tests pass
	// pre-generated ones because key generation is slow.
	SignatureKey, EncryptionKey *rsa.PrivateKey
	// Rand defaults to crypto/rand.Reader.
	Rand io.Reader
}

// UserCredentials is the user side of a registration, marshalling to the
// credentials FILE.
type UserCredentials struct {
	ConsumerKey             string `json:"consumer_key"`
	AccessToken             string `json:"access_token"`
	AccessTokenSecret       string `json:"access_token_secret"`
	SignaturePrivateKeyPEM  string `json:"signature_private_key_pem"`
	EncryptionPrivateKeyPEM string `json:"encryption_private_key_pem"`
	DHPrimeHex              string `json:"dh_prime_hex"`
	Realm                   string `json:"realm"`
	AccountID               string `json:"account_id"`
}

// Register creates a consumer the way IBKR's self-service portal does: a
// 20-hex access token and a 32-byte secret delivered encrypted (PKCS#1 v1.5)
// to the encryption key and base64-encoded. It returns the simulator's side
// and the user's side; the caller adds the Consumer to a Server.
func Register(opts RegisterOptions) (Consumer, UserCredentials, error) {
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	fail := func(err error) (Consumer, UserCredentials, error) {
		return Consumer{}, UserCredentials{}, fmt.Errorf("register consumer: %w", err)
	}
	var err error
	sigKey, encKey := opts.SignatureKey, opts.EncryptionKey
	if sigKey == nil {
		if sigKey, err = rsa.GenerateKey(rnd, 2048); err != nil {
			return fail(err)
		}
	}
	if encKey == nil {
		if encKey, err = rsa.GenerateKey(rnd, 2048); err != nil {
			return fail(err)
		}
	}
	prime := opts.DHPrime
	if prime == nil {
		prime = RFC3526Group14()
	}
	key := opts.ConsumerKey
	if key == "" {
		if key, err = randomString(rnd, 9, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"); err != nil {
			return fail(err)
		}
	}
	acct := opts.AccountID
	if acct == "" {
		digits, err := randomString(rnd, 7, "0123456789")
		if err != nil {
			return fail(err)
		}
		acct = "DU" + digits
	}
	if !validAccountID(acct) {
		return fail(fmt.Errorf("account id %q: want DU or U followed by digits", acct))
	}
	tokenBytes := make([]byte, 10)
	secret := make([]byte, secretByteLen)
	if _, err := io.ReadFull(rnd, tokenBytes); err != nil {
		return fail(err)
	}
	if _, err := io.ReadFull(rnd, secret); err != nil {
		return fail(err)
	}
	enc, err := rsa.EncryptPKCS1v15(rnd, &encKey.PublicKey, secret)
	if err != nil {
		return fail(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&sigKey.PublicKey)
	if err != nil {
		return fail(err)
	}
	encDER, err := x509.MarshalPKCS8PrivateKey(encKey)
	if err != nil {
		return fail(err)
	}
	c := Consumer{
		ConsumerKey:               key,
		AccessToken:               hex.EncodeToString(tokenBytes),
		AccessTokenSecretPlainHex: hex.EncodeToString(secret),
		SignaturePublicKeyPEM:     string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})),
		DHPrimeHex:                prime.Text(16),
		Realm:                     realmLimited,
		Accounts:                  []Account{{ID: acct, Paper: strings.HasPrefix(acct, "DU")}},
	}
	u := UserCredentials{
		ConsumerKey:             key,
		AccessToken:             c.AccessToken,
		AccessTokenSecret:       base64.StdEncoding.EncodeToString(enc),
		SignaturePrivateKeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(sigKey)})),
		EncryptionPrivateKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: encDER})),
		DHPrimeHex:              c.DHPrimeHex,
		Realm:                   realmLimited,
		AccountID:               acct,
	}
	return c, u, nil
}

// randomString draws n characters of alphabet without modulo bias.
func randomString(rnd io.Reader, n int, alphabet string) (string, error) {
	if len(alphabet) == 0 || len(alphabet) > 256 {
		return "", errors.New("bad alphabet")
	}
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	var b [1]byte
	for len(out) < n {
		if _, err := io.ReadFull(rnd, b[:]); err != nil {
			return "", err
		}
		if int(b[0]) >= limit {
			continue
		}
		out = append(out, alphabet[int(b[0])%len(alphabet)])
	}
	return string(out), nil
}
