package ibkrsim_test

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

func TestRegister(t *testing.T) {
	k := keysOnce()
	c, u, err := ibkrsim.Register(ibkrsim.RegisterOptions{SignatureKey: k.sig, EncryptionKey: k.enc})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, value, pattern string }{
		{"consumer key", u.ConsumerKey, `^[A-Z]{9}$`},
		{"access token", u.AccessToken, `^[0-9a-f]{20}$`},
		{"account", u.AccountID, `^DU[0-9]{7}$`},
		{"secret", u.AccessTokenSecret, `^[A-Za-z0-9+/]{342}==$`},
		{"signature key", u.SignaturePrivateKeyPEM, `^-----BEGIN RSA PRIVATE KEY-----\n`},
		{"encryption key", u.EncryptionPrivateKeyPEM, `^-----BEGIN PRIVATE KEY-----\n`},
		{"realm", u.Realm, `^limited_poa$`},
	} {
		if !regexp.MustCompile(tc.pattern).MatchString(tc.value) {
			t.Errorf("%s %q does not match %s", tc.name, tc.value, tc.pattern)
		}
	}
	// The secret decrypts with the encryption key to the consumer's plaintext.
	ct, err := base64.StdEncoding.DecodeString(u.AccessTokenSecret)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := rsa.DecryptPKCS1v15(nil, parsePrivateKey(t, u.EncryptionPrivateKeyPEM), ct)
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != 32 || hex.EncodeToString(plain) != c.AccessTokenSecretPlainHex {
		t.Errorf("decrypted secret %x, consumer has %s", plain, c.AccessTokenSecretPlainHex)
	}
	if c.DHPrimeHex != ibkrsim.RFC3526Group14().Text(16) || u.DHPrimeHex != c.DHPrimeHex {
		t.Error("default DH group is not RFC 3526 group 14")
	}
	if ibkrsim.RFC3526Group14().BitLen() != 2048 {
		t.Error("group 14 is not 2048 bits")
	}
	want := []ibkrsim.Account{{ID: u.AccountID, Paper: true}}
	if diff := cmp.Diff(want, c.Accounts); diff != "" {
		t.Errorf("accounts (-want +got):\n%s", diff)
	}
	live, _, err := ibkrsim.Register(ibkrsim.RegisterOptions{AccountID: "U7654321", SignatureKey: k.sig, EncryptionKey: k.enc})
	if err != nil || live.Accounts[0].Paper {
		t.Errorf("live account: %+v %v", live.Accounts, err)
	}
	if _, _, err := ibkrsim.Register(ibkrsim.RegisterOptions{AccountID: "XX1", SignatureKey: k.sig, EncryptionKey: k.enc}); err == nil {
		t.Error("bad account id accepted")
	}
}

// TestConsumersFileAndControlRegistration covers the two ways `ordertune sim
// register` hands a consumer over, then a handshake with each.
func TestConsumersFileAndControlRegistration(t *testing.T) {
	k := keysOnce()
	dir := t.TempDir()
	file := filepath.Join(dir, "consumers.json")
	a, _, err := ibkrsim.Register(ibkrsim.RegisterOptions{SignatureKey: k.sig, EncryptionKey: k.enc})
	if err != nil {
		t.Fatal(err)
	}
	if err := ibkrsim.AppendConsumersFile(file, a); err != nil {
		t.Fatal(err)
	}
	v := loadVectors(t).consumer() // PEM DH parameters, as a vector file seeds it
	if err := ibkrsim.AppendConsumersFile(file, v); err != nil {
		t.Fatal(err)
	}
	if err := ibkrsim.AppendConsumersFile(file, a); err == nil {
		t.Error("duplicate consumer appended")
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("consumers file mode %v %v", fi.Mode(), err)
	}

	f := newFixture(t, ibkrsim.Config{})
	if err := f.sim.LoadConsumersFile(file); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.LoadConsumersFile(file); err == nil {
		t.Error("loading the same consumers twice succeeded")
	}
	b, _, err := ibkrsim.Register(ibkrsim.RegisterOptions{SignatureKey: k.sig, EncryptionKey: k.enc})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := ibkrsim.PostConsumer(ctx, f.srv.Client(), f.srv.URL+"/v1/api", b); err != nil {
		t.Fatal(err)
	}
	if err := ibkrsim.PostConsumer(ctx, f.srv.Client(), f.srv.URL, b); err == nil {
		t.Error("registering twice succeeded")
	}
	for _, c := range []ibkrsim.Consumer{a, b, v} {
		cl := newClient(t, f.srv, c, k.sig, f.clock.Now)
		if _, err := cl.handshake(); err != nil {
			t.Errorf("%s: %v", c.ConsumerKey, err)
		}
	}
	bad := a
	bad.ConsumerKey = "BADPEMKEY"
	bad.SignaturePublicKeyPEM = "not a key"
	if r := f.control(http.MethodPost, "/sim/consumers", bad); r.Status != http.StatusUnprocessableEntity {
		t.Errorf("bad consumer: %d %s", r.Status, r.Body)
	}
}

func TestPEMTolerance(t *testing.T) {
	k := keysOnce()
	c, _, err := ibkrsim.Register(ibkrsim.RegisterOptions{SignatureKey: k.sig, EncryptionKey: k.enc})
	if err != nil {
		t.Fatal(err)
	}
	// CRLF line ends, as pasted from Windows.
	crlf := regexp.MustCompile("\n").ReplaceAllString(c.SignaturePublicKeyPEM, "\r\n")
	c.SignaturePublicKeyPEM = crlf
	sim := ibkrsim.New(ibkrsim.Config{})
	if err := sim.AddConsumer(c); err != nil {
		t.Errorf("CRLF PEM: %v", err)
	}
}

func TestListenAndServe(t *testing.T) {
	k := keysOnce()
	ctx, cancel := context.WithCancel(context.Background())
	sim := ibkrsim.New(ibkrsim.Config{})
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- ibkrsim.ListenAndServe(ctx, "127.0.0.1:0", sim, func(a string) { addrc <- a })
	}()
	addr := <-addrc
	c, _, err := ibkrsim.Register(ibkrsim.RegisterOptions{SignatureKey: k.sig, EncryptionKey: k.enc})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	if err := ibkrsim.PostConsumer(ctx, hc, "http://"+addr+"/v1/api", c); err != nil {
		t.Fatal(err)
	}
	res, err := hc.Get("http://" + addr + "/sim/orders")
	if err != nil {
		t.Fatal(err)
	}
	var orders []json.RawMessage
	if err := json.NewDecoder(res.Body).Decode(&orders); err != nil || len(orders) != 0 {
		t.Errorf("orders %v %v", orders, err)
	}
	res.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
