package rewrap

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/seal"
	"github.com/ordertune/ordertune/internal/seal/sealtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// rings returns the old ring (k1) and the rotated ring (k2 primary, k1
// still opening).
func rings(t *testing.T) (old, rotated, onlyNew *seal.Ring) {
	k1, k2 := sealtest.Key(t, "k1"), sealtest.Key(t, "k2")
	return sealtest.Ring(t, k1), sealtest.Ring(t, k2, k1), sealtest.Ring(t, k2)
}

func addUser(t *testing.T, ctx context.Context, pool *pgxpool.Pool, ring *seal.Ring, secret string) string {
	t.Helper()
	var id string
	if err := pool.QueryRow(ctx, `INSERT INTO users (email, role, password_hash, created_at, updated_at)
		VALUES ('u' || gen_random_uuid() || '@example.com', 'subscriber', 'x', now(), now()) RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		ct, err := ring.Seal([]byte(secret), id, "totp_secret")
		if err != nil {
			t.Fatal(err)
		}
		pending, err := ring.Seal([]byte(secret+"-pending"), id, "totp_secret")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `UPDATE users SET totp_secret = $2, totp_pending_secret = $3 WHERE id = $1`, id, ct, pending); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func TestRewrapTOTPSecrets(t *testing.T) {
	ctx := ctxT(t)
	pool := pgtest.Pool(t)
	old, rotated, onlyNew := rings(t)
	cols := Product()

	want := map[string]string{}
	for i := range 25 {
		secret := ""
		if i%5 != 0 { // some users have no TOTP secret (NULL)
			secret = "JBSWY3DPEHPK3PX" + string(rune('A'+i))
		}
		id := addUser(t, ctx, pool, old, secret)
		want[id] = secret
	}
	// A ciphertext moved to another user: it must be reported, not re-sealed.
	var victim, thief string
	for id, s := range want {
		if s == "" {
			continue
		}
		if victim == "" {
			victim = id
		} else if thief == "" {
			thief = id
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE users SET totp_secret = (SELECT totp_secret FROM users WHERE id = $1) WHERE id = $2`, victim, thief); err != nil {
		t.Fatal(err)
	}

	rem, err := Remaining(ctx, pool, rotated, cols)
	if err != nil {
		t.Fatal(err)
	}
	wantRem := map[string]map[string]int64{"users.totp_secret": {"k1": 20}, "users.totp_pending_secret": {"k1": 20}}
	if diff := cmp.Diff(wantRem, rem); diff != "" {
		t.Errorf("before: remaining (-want +got):\n%s", diff)
	}

	var progress int
	res, err := Run(ctx, pool, rotated, cols, Options{BatchSize: 7, Progress: func(Result) { progress++ }})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Result{}
	for _, r := range res {
		if r.Resealed > 0 || r.Failed > 0 {
			got[r.Column] = r
		}
	}
	wantRes := map[string]Result{
		"users.totp_secret":         {Column: "users.totp_secret", Resealed: 19, Failed: 1},
		"users.totp_pending_secret": {Column: "users.totp_pending_secret", Resealed: 20},
	}
	if diff := cmp.Diff(wantRes, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if progress < 6 {
		t.Errorf("progress reported %d times, want one per batch (at least 6)", progress)
	}
	rem, err = Remaining(ctx, pool, rotated, cols)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]map[string]int64{"users.totp_secret": {"k1": 1}}, rem); diff != "" {
		t.Errorf("after: remaining (-want +got):\n%s", diff)
	}

	// Every re-sealed secret opens with the new key alone.
	for id, secret := range want {
		if secret == "" || id == thief {
			continue
		}
		var ct, pending []byte
		if err := pool.QueryRow(ctx, `SELECT totp_secret, totp_pending_secret FROM users WHERE id = $1`, id).Scan(&ct, &pending); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			ct   []byte
			want string
		}{{ct, secret}, {pending, secret + "-pending"}} {
			plain, err := onlyNew.Open(c.ct, id, "totp_secret")
			if err != nil || string(plain) != c.want {
				t.Errorf("user %s: open with k2 alone = %q, %v", id, plain, err)
			}
		}
	}

	// A second run has nothing to do.
	res, err = Run(ctx, pool, rotated, cols, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Resealed != 0 {
			t.Errorf("second run re-sealed %d rows of %s", r.Resealed, r.Column)
		}
	}
}

// TestProductColumnsExist checks every listed column against the migrated
// schema: a renamed column would otherwise be skipped silently.
func TestProductColumnsExist(t *testing.T) {
	ctx := ctxT(t)
	pool := pgtest.Pool(t)
	for _, c := range Product() {
		for _, name := range append(append([]string{c.Column, c.UserColumn}, c.Key...), c.ScopeColumn) {
			if name == "" {
				continue
			}
			var typ string
			err := pool.QueryRow(ctx, `SELECT data_type FROM information_schema.columns WHERE table_name = $1 AND column_name = $2`,
				c.Table, name).Scan(&typ)
			if err != nil {
				t.Errorf("%s.%s: %v", c.Table, name, err)
				continue
			}
			if name == c.Column && typ != "bytea" {
				t.Errorf("%s.%s is %s, want bytea", c.Table, name, typ)
			}
		}
	}
	// And Run works on an empty database.
	if _, err := Run(ctx, pool, seal.RandomRing("k9"), Product(), Options{}); err != nil {
		t.Fatal(err)
	}
}
