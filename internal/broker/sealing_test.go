package broker

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/errs"
)

// TestSealBulkConnection: a bulk-sealed set opens, in its row, to what
// SealConnection's does, and its plain fields are still checked.
func TestSealBulkConnection(t *testing.T) {
	e := newEnv(t, envOptions{})
	in := e.sim.register("DU1234567", true)
	const user = "00000000-0000-4000-8000-000000000001"
	opened := func(seal func() (SealedConnection, error)) Input {
		t.Helper()
		sc, err := seal()
		if err != nil {
			t.Fatal(err)
		}
		o, err := e.svc.open(user, sealedRow{mode: Paper, consumerKey: sc.ConsumerKey, accessToken: sc.AccessToken, realm: sc.Realm,
			signatureKey: sc.SignatureKey, encryptionKey: sc.EncryptionKey, atSecret: sc.AccessTokenSecret, dhParams: sc.DHParams, accountID: sc.AccountID})
		if err != nil {
			t.Fatal(err)
		}
		return o.input
	}
	want := opened(func() (SealedConnection, error) { return SealConnection(e.ring, user, Paper, in) })
	got := opened(func() (SealedConnection, error) { return SealBulkConnection(e.ring, user, Paper, in) })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bulk-sealed set opens to (-SealConnection +SealBulkConnection):\n%s", diff)
	}

	bad := in
	bad.ConsumerKey, bad.AccountID = "lower", "X1"
	_, err := SealBulkConnection(e.ring, user, Paper, bad)
	if e := errs.As(err); e == nil || len(e.Fields) != 2 {
		t.Errorf("bad plain fields: %v, want two field errors", err)
	}
}
