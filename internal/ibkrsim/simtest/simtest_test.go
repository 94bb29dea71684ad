package simtest_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ibkrsim/simtest"
)

func TestLoadKeys(t *testing.T) {
	k, err := simtest.LoadKeys()
	if err != nil {
		t.Fatal(err)
	}
	keys := []struct {
		name string
		bits int
	}{
		{"signature", k.Signature.N.BitLen()},
		{"encryption", k.Encryption.N.BitLen()},
		{"wrong signature", k.WrongSignature.N.BitLen()},
	}
	for _, tt := range keys {
		if tt.bits != 2048 {
			t.Errorf("%s key: %d bits, want 2048", tt.name, tt.bits)
		}
	}
	if k.Signature.Equal(k.WrongSignature) || k.Signature.Equal(k.Encryption) {
		t.Error("the test keys are not distinct")
	}
	if !strings.HasPrefix(k.DHParamPEM, "-----BEGIN DH PARAMETERS-----") {
		t.Errorf("DHParamPEM starts %.30q, want a DH parameters PEM", k.DHParamPEM)
	}
}

func TestRegister(t *testing.T) {
	tests := []struct {
		account string
		want    string // "" when any fresh paper account will do
	}{
		{"DU7000001", "DU7000001"},
		{"", ""},
	}
	for _, tt := range tests {
		c, u := simtest.Register(t, tt.account)
		if tt.want != "" {
			if diff := cmp.Diff(tt.want, u.AccountID); diff != "" {
				t.Errorf("Register(%q) account (-want +got):\n%s", tt.account, diff)
			}
		} else if !strings.HasPrefix(u.AccountID, "DU") {
			t.Errorf("Register(\"\") account %q, want a paper account", u.AccountID)
		}
		if c.ConsumerKey != u.ConsumerKey {
			t.Errorf("consumer key %q on the server side, %q on the user side", c.ConsumerKey, u.ConsumerKey)
		}
		if err := ibkrsim.New(ibkrsim.Config{}).AddConsumer(c); err != nil {
			t.Errorf("the simulator refused the registered consumer: %v", err)
		}
	}
}

// TestServeAndAddConsumer proves a consumer added to a served simulator is
// known to it: adding the same consumer key again is refused.
func TestServeAndAddConsumer(t *testing.T) {
	sim, srv := simtest.Serve(t, ibkrsim.Config{})
	u := simtest.AddConsumer(t, sim, "DU7000002")
	if diff := cmp.Diff("DU7000002", u.AccountID); diff != "" {
		t.Errorf("account (-want +got):\n%s", diff)
	}
	again, _ := simtest.Register(t, "DU7000003")
	again.ConsumerKey = u.ConsumerKey
	if err := sim.AddConsumer(again); err == nil {
		t.Error("the simulator accepted a second consumer with the added one's key")
	}
	res, err := srv.Client().Get(srv.URL + "/sim/orders")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("GET /sim/orders: status %d, want 200", res.StatusCode)
	}
}

func TestSecrets(t *testing.T) {
	pem := "-----BEGIN TEST BLOCK-----\n" + strings.Repeat("A", 64) + "\n" + strings.Repeat("B", 12) + "==\n-----END TEST BLOCK-----\n"
	u := ibkrsim.UserCredentials{
		ConsumerKey: "NOTSECRET", AccessToken: "notsecret-token",
		SignaturePrivateKeyPEM: pem, EncryptionPrivateKeyPEM: strings.ReplaceAll(pem, "A", "C"),
		AccessTokenSecret: "c2VjcmV0", AccountID: "DU7000004",
	}
	want := []string{strings.Repeat("A", 64), strings.Repeat("C", 64), "c2VjcmV0", "DU7000004"}
	if diff := cmp.Diff(want, simtest.Secrets(u)); diff != "" {
		t.Errorf("Secrets (-want +got):\n%s", diff)
	}
}
