package ibkrsim_test

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

func TestAddConsumerValidation(t *testing.T) {
	k := keysOnce()
	base, _, err := ibkrsim.Register(ibkrsim.RegisterOptions{AccountID: "DU6000001", SignatureKey: k.sig, EncryptionKey: k.enc})
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.sig.PublicKey)}))
	prime, _ := new(big.Int).SetString(loadVectors(t).Credentials.DHPrimeHex, 16)
	der, err := asn1.Marshal(struct{ P, G *big.Int }{prime, big.NewInt(5)})
	if err != nil {
		t.Fatal(err)
	}
	gen5 := string(pem.EncodeToMemory(&pem.Block{Type: "DH PARAMETERS", Bytes: der}))
	for _, tc := range []struct {
		name string
		mut  func(c *ibkrsim.Consumer)
		want string // "" means accepted
	}{
		{"as registered", func(c *ibkrsim.Consumer) {}, ""},
		{"PKCS#1 public key", func(c *ibkrsim.Consumer) { c.SignaturePublicKeyPEM = pkcs1 }, ""},
		{"DH parameters PEM", func(c *ibkrsim.Consumer) { c.DHPrimeHex = ""; c.DHParamPEM = loadVectors(t).Credentials.DHParamPEM }, ""},
		{"live account", func(c *ibkrsim.Consumer) { c.Accounts = []ibkrsim.Account{{ID: "U1234567"}} }, ""},
		{"no consumer key", func(c *ibkrsim.Consumer) { c.ConsumerKey = "" }, "consumer_key is required"},
		{"no token", func(c *ibkrsim.Consumer) { c.AccessToken = "" }, "access_token is required"},
		{"secret not hex", func(c *ibkrsim.Consumer) { c.AccessTokenSecretPlainHex = "zz" }, "must be hex"},
		{"key not PEM", func(c *ibkrsim.Consumer) { c.SignaturePublicKeyPEM = "MIIB" }, "no PEM block"},
		{"private key given", func(c *ibkrsim.Consumer) {
			c.SignaturePublicKeyPEM = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"
		}, "unexpected PEM type"},
		{"no DH", func(c *ibkrsim.Consumer) { c.DHPrimeHex = "" }, "dh_prime_hex or dh_param_pem is required"},
		{"small prime", func(c *ibkrsim.Consumer) { c.DHPrimeHex = big.NewInt(23).Text(16) }, "at least 512 bits"},
		{"generator 5", func(c *ibkrsim.Consumer) { c.DHPrimeHex = ""; c.DHParamPEM = gen5 }, "generator must be 2"},
		{"no accounts", func(c *ibkrsim.Consumer) { c.Accounts = nil }, "at least one account"},
		{"bad account", func(c *ibkrsim.Consumer) { c.Accounts = []ibkrsim.Account{{ID: "XX1234567"}} }, "want DU or U"},
		{"test realm", func(c *ibkrsim.Consumer) { c.Realm = "test_realm" }, "reserved for TESTCONS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.mut(&c)
			err := ibkrsim.New(ibkrsim.Config{}).AddConsumer(c)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

// FuzzAddConsumer feeds POST /sim/consumers bodies to the consumer parser:
// it must refuse bad input with an error, never panic.
func FuzzAddConsumer(f *testing.F) {
	v := loadVectors(f)
	seed, err := json.Marshal(v.consumer())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(seed))
	f.Add(`{"consumer_key":"A","access_token":"b","access_token_secret_plain_hex":"00","signature_public_key_pem":"-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----","dh_prime_hex":"17","accounts":[{"id":"DU1"}]}`)
	f.Add(`{"dh_param_pem":"-----BEGIN DH PARAMETERS-----\nMAYCAQUCAQI=\n-----END DH PARAMETERS-----"}`)
	f.Fuzz(func(t *testing.T, body string) {
		var c ibkrsim.Consumer
		if json.Unmarshal([]byte(body), &c) != nil {
			return
		}
		_ = ibkrsim.New(ibkrsim.Config{}).AddConsumer(c)
	})
}

// FuzzAddFault feeds POST /sim/faults bodies to the fault parser.
func FuzzAddFault(f *testing.F) {
	f.Add(`{"kind":"latency","path":"/iserver/*/orders","value":"250ms","count":1}`)
	f.Add(`{"kind":"status","value":503}`)
	f.Add(`{"kind":"timeout_after_accept","value":1e308}`)
	f.Add(`{"kind":"reply_question","path":"[","value":"o354"}`)
	f.Add(`{"kind":"empty_orders","value":"60s"}`)
	f.Add(`{"kind":"empty_orders","value":1e308,"count":2}`)
	f.Fuzz(func(t *testing.T, body string) {
		var fl ibkrsim.Fault
		if json.Unmarshal([]byte(body), &fl) != nil {
			return
		}
		got, err := ibkrsim.New(ibkrsim.Config{}).AddFault(fl)
		if err == nil && got.ID == 0 {
			t.Fatal("accepted fault without an id")
		}
	})
}
