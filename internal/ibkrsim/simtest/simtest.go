// Package simtest holds what tests of the IBKR simulator's callers share: a
// simulator over real HTTP, generated test keys for simulated consumers, and
// registering consumers with them. It imports only the simulator, never the client in
// internal/ibkr, so the simulator's own tests can use it too.
package simtest

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"embed"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// testdata holds generated test keys only, never a real IBKR key.
//
//go:embed testdata/*.pem
var testdata embed.FS

// Keys are generated test keys for simulated consumers: RSA key generation
// is too slow to repeat in every test.
type Keys struct {
	// Signature and Encryption are a consumer's two RSA keys.
	Signature, Encryption *rsa.PrivateKey
	// WrongSignature is a third key, for requests signed with a key the
	// simulator does not know.
	WrongSignature *rsa.PrivateKey
	// DHParamPEM is a Diffie-Hellman parameters PEM (a valid file, but not a
	// key: tests put it where a key belongs).
	DHParamPEM string
}

// LoadKeys returns the generated test keys.
func LoadKeys() (Keys, error) {
	var k Keys
	var err error
	if k.Signature, err = readKey("test_signature_key.pem"); err != nil {
		return Keys{}, err
	}
	if k.Encryption, err = readKey("test_encryption_key.pem"); err != nil {
		return Keys{}, err
	}
	if k.WrongSignature, err = readKey("test_wrong_signature_key.pem"); err != nil {
		return Keys{}, err
	}
	dh, err := testdata.ReadFile("testdata/test_dhparam.pem")
	if err != nil {
		return Keys{}, fmt.Errorf("test keys: %w", err)
	}
	k.DHParamPEM = string(dh)
	return k, nil
}

// MustKeys is LoadKeys for a test: a broken testdata file fails t.
func MustKeys(t testing.TB) Keys {
	t.Helper()
	k, err := LoadKeys()
	if err != nil {
		t.Fatalf("test keys: %v", err)
	}
	return k
}

// readKey parses one embedded key, PKCS#1 or PKCS#8 (the files use both, as
// users' files do).
func readKey(name string) (*rsa.PrivateKey, error) {
	b, err := testdata.ReadFile("testdata/" + name)
	if err != nil {
		return nil, fmt.Errorf("test key %s: %w", name, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("test key %s: no PEM block", name)
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("test key %s: %w", name, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("test key %s: %T, not an RSA key", name, k)
	}
	return rk, nil
}

// Register makes a consumer for account (a fresh paper account when empty)
// with the test keys and returns its server and user sides. The simulator
// learns of it only when the caller adds it, so a test can also hold a
// consumer IBKR has not activated yet.
func Register(t testing.TB, account string) (ibkrsim.Consumer, ibkrsim.UserCredentials) {
	t.Helper()
	k := MustKeys(t)
	c, u, err := ibkrsim.Register(ibkrsim.RegisterOptions{AccountID: account, SignatureKey: k.Signature, EncryptionKey: k.Encryption})
	if err != nil {
		t.Fatalf("register consumer: %v", err)
	}
	return c, u
}

// AddConsumer registers a consumer for account (a fresh paper account when
// empty) with the test keys, tells sim about it, and returns the user side,
// as a subscriber's credentials file holds it.
func AddConsumer(t testing.TB, sim *ibkrsim.Server, account string) ibkrsim.UserCredentials {
	t.Helper()
	c, u := Register(t, account)
	if err := sim.AddConsumer(c); err != nil {
		t.Fatalf("add consumer: %v", err)
	}
	return u
}

// DecodeFile decodes u, as the credentials FILE a subscriber downloads,
// into v (the client's own input type: the user side travels as a file).
func DecodeFile(t testing.TB, u ibkrsim.UserCredentials, v any) {
	t.Helper()
	file, err := json.Marshal(u)
	if err != nil {
		t.Fatalf("credentials file: %v", err)
	}
	if err := json.Unmarshal(file, v); err != nil {
		t.Fatalf("credentials file: %v", err)
	}
}

// Serve starts a simulator with cfg on a loopback port for the test's
// lifetime. The client's base URL is the server's URL + ibkrsim.APIPrefix;
// the control API lives under /sim.
func Serve(t testing.TB, cfg ibkrsim.Config) (*ibkrsim.Server, *httptest.Server) {
	t.Helper()
	sim := ibkrsim.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv
}

// Control sends one request with body as JSON (none when nil) to srv, a
// simulator's server, at path (the control API lives under /sim) and
// returns the answer, its body already read into the second result.
func Control(t testing.TB, srv *httptest.Server, method, path string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, out
}

// Secrets lists the strings of u that must never appear in a log or an
// answer: the base64 body of each PEM key line by line (a leak may be cut
// at any line break), the access token secret and the account id.
func Secrets(u ibkrsim.UserCredentials) []string {
	var out []string
	for _, p := range []string{u.SignaturePrivateKeyPEM, u.EncryptionPrivateKeyPEM} {
		for _, line := range strings.Split(p, "\n") {
			if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
				out = append(out, line)
			}
		}
	}
	return append(out, u.AccessTokenSecret, u.AccountID)
}
