package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkrsim/simtest"
	"github.com/ordertune/ordertune/internal/seal"
)

func TestSaveAndReadBack(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	u := e.user()
	in := e.sim.register("DU7654321", true)
	conn, err := e.svc.Save(ctx, u, Paper, in, Actor{UserID: u, IP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	want := &Connection{Mode: Paper, ConsumerKey: in.ConsumerKey, AccountIDMasked: "DU•••4321", Realm: "limited_poa", Status: StatusUntested}
	if diff := cmp.Diff(want, conn, cmpopts.IgnoreFields(Connection{}, "UpdatedAt")); diff != "" {
		t.Errorf("Save (-want +got):\n%s", diff)
	}

	ov, err := e.svc.Overview(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	wantOv := Overview{ActiveMode: Paper, Connections: map[Mode]*Connection{Live: nil, Paper: want}, OnCompeting: CompetingTakeBack}
	if diff := cmp.Diff(wantOv, ov, cmpopts.IgnoreFields(Connection{}, "UpdatedAt")); diff != "" {
		t.Errorf("Overview (-want +got):\n%s", diff)
	}
	b, _ := json.Marshal(ov)
	for _, s := range secrets(in) {
		if strings.Contains(string(b), s) {
			t.Errorf("GET /broker JSON contains a secret (%.12s…)", s)
		}
	}
	for _, k := range []string{"signature", "encryption", "secret", "dh_"} {
		if strings.Contains(string(b), k) {
			t.Errorf("GET /broker JSON names a secret field %q: %s", k, b)
		}
	}

	// Another user sees nothing of it.
	other := e.user()
	ov2, err := e.svc.Overview(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Overview{ActiveMode: Paper, Connections: map[Mode]*Connection{Live: nil, Paper: nil}, OnCompeting: CompetingTakeBack}, ov2); diff != "" {
		t.Errorf("other user's overview (-want +got):\n%s", diff)
	}

	// The saved ciphertexts open to what was saved.
	row, err := e.svc.loadSealed(ctx, u, Paper)
	if err != nil {
		t.Fatal(err)
	}
	o, err := e.svc.open(u, row)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, o.input); diff != "" {
		t.Errorf("opened credentials differ (-saved +opened):\n%s", diff)
	}
	o.wipe()

	e.wantCount(t, 1, "audit rows for the save",
		`SELECT count(*) FROM audit_events WHERE user_id = $1 AND action = 'broker.credentials_saved' AND ip = '192.0.2.1'`, u)
}

func TestSaveRejectsInvalidFields(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	u := e.user()
	good := e.sim.register("DU1234567", false)
	k := simtest.MustKeys(t)
	tests := []struct {
		name   string
		edit   func(*Input)
		fields []string
	}{
		{"missing consumer key", func(in *Input) { in.ConsumerKey = "" }, []string{"consumer_key"}},
		{"lower-case consumer key", func(in *Input) { in.ConsumerKey = "abcdefghi" }, []string{"consumer_key"}},
		{"access token not hex", func(in *Input) { in.AccessToken = "not-a-token" }, []string{"access_token"}},
		{"secret truncated", func(in *Input) { in.AccessTokenSecret = in.AccessTokenSecret[:100] }, []string{"access_token_secret"}},
		{"signature key garbage", func(in *Input) { in.SignatureKeyPEM = "hello" }, []string{"signature_key_pem"}},
		{"encryption key is a DH PEM", func(in *Input) { in.EncryptionKeyPEM = k.DHParamPEM }, []string{"encryption_key_pem"}},
		{"DH prime too short", func(in *Input) { in.DHParams = "abcdef" }, []string{"dh_params"}},
		{"account id malformed", func(in *Input) { in.AccountID = "X123" }, []string{"account_id"}},
		{"everything empty", func(in *Input) { *in = Input{} }, []string{"consumer_key", "access_token", "account_id", "signature_key_pem", "access_token_secret", "dh_params"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := good
			tt.edit(&in)
			_, err := e.svc.Save(ctx, u, Live, in, Actor{UserID: u})
			ee := errs.As(err)
			if ee == nil || ee.Code != errs.Invalid {
				t.Fatalf("Save error = %v, want invalid_argument with fields", err)
			}
			var got []string
			for _, f := range ee.Fields {
				got = append(got, f.Field)
				if f.Message == "" {
					t.Errorf("field %s has no message", f.Field)
				}
			}
			if diff := cmp.Diff(tt.fields, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
	e.wantCount(t, 0, "rows after invalid saves", `SELECT count(*) FROM broker_connections`)
}

func TestSaveAcceptsPEMDHParamsAndDefaultedEncryptionKey(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	u := e.user()
	in := e.sim.register("DU1234567", false)
	in.DHParams = simtest.MustKeys(t).DHParamPEM
	if _, err := e.svc.Save(ctx, u, Paper, in, Actor{}); err != nil {
		t.Fatalf("PEM DH params: %v", err)
	}
	// Without an encryption key the signature key must decrypt the secret:
	// here it cannot, and the form says which field to fix.
	in.EncryptionKeyPEM = ""
	_, err := e.svc.Save(ctx, u, Paper, in, Actor{})
	if ee := errs.As(err); ee == nil || len(ee.Fields) != 1 || ee.Fields[0].Field != "access_token_secret" {
		t.Errorf("defaulted encryption key: got %v, want a field error on access_token_secret", err)
	}
	if err := e.svc.Delete(ctx, u, Paper, Actor{}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Delete(ctx, u, Paper, Actor{}); !errs.Is(err, errs.NotFound) {
		t.Errorf("second delete: %v, want not_found", err)
	}
}

// A ciphertext moved to another user's row, another column or the other
// mode's row no longer opens.
func TestMovedCiphertextDoesNotOpen(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	alice, bob := e.user(), e.user()
	for _, u := range []string{alice, bob} {
		for _, m := range []Mode{Live, Paper} {
			if _, err := e.svc.Save(ctx, u, m, e.sim.register("DU1234567", false), Actor{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name             string
		fromUser, toUser string
		fromMode, toMode Mode
		fromCol, toCol   string
	}{
		{"to another user", alice, bob, Live, Live, "signature_key", "signature_key"},
		{"to another user's account id", alice, bob, Paper, Paper, "account_id", "account_id"},
		{"to another field", alice, alice, Live, Live, "account_id", "dh_params"},
		{"secret into the key column", alice, alice, Live, Live, "access_token_secret", "signature_key"},
		{"to the other mode", alice, alice, Live, Paper, "signature_key", "signature_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := e.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			q := fmt.Sprintf(`UPDATE broker_connections SET %s = (SELECT %s FROM broker_connections WHERE user_id = $1 AND mode = $2)
				WHERE user_id = $3 AND mode = $4`, tt.toCol, tt.fromCol)
			if _, err := tx.Exec(ctx, q, tt.fromUser, string(tt.fromMode), tt.toUser, string(tt.toMode)); err != nil {
				t.Fatal(err)
			}
			row, err := scanSealed(tx.QueryRow(ctx, selectSealed+` WHERE user_id = $1 AND mode = $2`, tt.toUser, string(tt.toMode)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.svc.open(tt.toUser, row)
			if !errors.Is(err, seal.ErrOpen) {
				t.Errorf("open after moving %s: err = %v, want seal.ErrOpen", tt.fromCol, err)
			}
		})
	}
	// Untouched rows still open.
	if err := e.svc.OpenSaved(ctx, bob, Live); err != nil {
		t.Errorf("bob's untouched row: %v", err)
	}
}

// pg_dump of a database holding saved credentials shows no PEM body, no
// access token secret and no account id.
func TestPGDumpHoldsNoSecret(t *testing.T) {
	pgDump, err := exec.LookPath("pg_dump")
	if err != nil {
		pgDump = "/usr/lib/postgresql/15/bin/pg_dump"
	}
	e := newEnv(t, envOptions{})
	ctx := ctxT(t)
	var all []string
	for range 3 {
		u := e.user()
		in := e.sim.register("", true)
		all = append(all, secrets(in)...)
		if _, err := e.svc.Save(ctx, u, Paper, in, Actor{UserID: u}); err != nil {
			t.Fatal(err)
		}
		// A test stores last_test and an audit row too.
		if _, err := e.svc.Test(ctx, u, Paper, nil, Actor{UserID: u}); err != nil {
			t.Fatal(err)
		}
	}
	url := e.pool.Config().ConnString()
	out, err := exec.CommandContext(ctx, pgDump, "--data-only", "--no-owner", url).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	dump := string(out)
	if !strings.Contains(dump, "broker_connections") {
		t.Fatalf("the dump does not include broker_connections:\n%.2000s", dump)
	}
	for _, s := range all {
		if strings.Contains(dump, s) {
			t.Errorf("pg_dump contains a secret in clear (%.12s…)", s)
		}
	}
	if strings.Contains(dump, "PRIVATE KEY") {
		t.Error("pg_dump contains a PEM header")
	}
	if os.Getenv("BROKER_TEST_SHOW_DUMP") != "" {
		t.Log(dump)
	}
}
