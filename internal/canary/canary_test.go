package canary

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/rewrap"
	"github.com/ordertune/ordertune/internal/seal/sealtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// TestCanary: the first start seals the canary; the same ring opens it
// again; a ring without its key is refused with the key id it needs; a
// rotated ring (new key first, old kept) opens it, and after a rewrap the
// new key alone does.
func TestCanary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	k1, k2 := sealtest.Key(t, "k1"), sealtest.Key(t, "k2")
	old := sealtest.Ring(t, k1)
	if err := Check(ctx, pool, old, t0); err != nil {
		t.Fatalf("first start: %v", err)
	}
	if n := canaryRows(t, pool); n != 1 {
		t.Fatalf("canary rows %d, want 1", n)
	}
	if err := Check(ctx, pool, old, t0); err != nil {
		t.Fatalf("second start with the same ring: %v", err)
	}

	wrong := sealtest.NewRing(t, "k1") // the same id, another key
	err := Check(ctx, pool, wrong, t0)
	if err == nil || !strings.Contains(err.Error(), `sealed with key "k1"`) || !strings.Contains(err.Error(), "refusing to start") {
		t.Fatalf("a wrong key: %v, want a refusal naming key k1", err)
	}
	if strings.Contains(err.Error(), strings.SplitN(k1, ":", 2)[1]) {
		t.Fatal("the refusal shows key material")
	}

	rotated := sealtest.Ring(t, k2, k1)
	if err := Check(ctx, pool, rotated, t0); err != nil {
		t.Fatalf("rotated ring keeping the old key: %v", err)
	}
	onlyNew := sealtest.Ring(t, k2)
	if err := Check(ctx, pool, onlyNew, t0); err == nil {
		t.Fatal("the new key alone opened a canary sealed with the old one")
	}
	if _, err := rewrap.Run(ctx, pool, rotated, rewrap.Product(), rewrap.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := Check(ctx, pool, onlyNew, t0); err != nil {
		t.Fatalf("the new key alone after rewrap: %v", err)
	}
}

// TestCanaryFirstStartChecksExistingSecrets: a database with sealed data
// from before the canary, started with the wrong key, is refused instead
// of getting a canary sealed with that wrong key.
func TestCanaryFirstStartChecksExistingSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	right := sealtest.NewRing(t, "k1")
	var id string
	if err := pool.QueryRow(ctx, `INSERT INTO users (email, role, password_hash, created_at, updated_at)
		VALUES ('a@example.com', 'subscriber', 'x', now(), now()) RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	ct, err := right.Seal([]byte("JBSWY3DPEHPK3PXP"), id, "totp_secret")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE users SET totp_secret = $2, totp_enabled = true WHERE id = $1`, id, ct); err != nil {
		t.Fatal(err)
	}
	err = Check(ctx, pool, sealtest.NewRing(t, "k7"), t0)
	if err == nil || !strings.Contains(err.Error(), "k1") {
		t.Fatalf("first start with a wrong key: %v, want a refusal naming k1", err)
	}
	if n := canaryRows(t, pool); n != 0 {
		t.Fatalf("a canary was stored with the wrong key (%d rows)", n)
	}
	if err := Check(ctx, pool, right, t0); err != nil {
		t.Fatalf("first start with the right key: %v", err)
	}
}

// canaryRows counts the canaries stored in pool's database.
func canaryRows(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM seal_canary`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
