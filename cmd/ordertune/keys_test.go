package main

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/seal"
)

func TestKeysGenerateAndRotate(t *testing.T) {
	a, out, _ := testApp(nil)
	if err := run(t.Context(), a, []string{"keys", "generate", "--id", "first"}); err != nil {
		t.Fatal(err)
	}
	entry := strings.TrimSpace(out.String())
	ring, err := seal.ParseRing(entry)
	if err != nil || ring.Primary() != "first" {
		t.Fatalf("generate printed %q: %v", entry, err)
	}

	a, out, _ = testApp(map[string]string{"ORDERTUNE_MASTER_KEYS": entry})
	if err := run(t.Context(), a, []string{"keys", "rotate"}); err != nil {
		t.Fatal(err)
	}
	next := strings.TrimSpace(out.String())
	rotated, err := seal.ParseRing(next)
	if err != nil {
		t.Fatalf("rotate printed an invalid ring: %v", err)
	}
	ids := rotated.IDs()
	if len(ids) != 2 || ids[1] != "first" || ids[0] == "first" || !strings.HasSuffix(next, ","+entry) {
		t.Fatalf("rotate: ids %v; want a new primary followed by the old key unchanged", ids)
	}
	// Old ciphertexts still open with the rotated ring.
	ct, _ := ring.Seal([]byte("x"), "u", "f")
	if _, err := rotated.Open(ct, "u", "f"); err != nil {
		t.Errorf("old ciphertext under the rotated ring: %v", err)
	}

	a, _, _ = testApp(map[string]string{"ORDERTUNE_MASTER_KEYS": entry})
	if err := run(t.Context(), a, []string{"keys", "rotate", "--id", "first"}); err == nil {
		t.Error("rotate accepted an id already in the ring")
	}
	a, _, _ = testApp(nil)
	if err := run(t.Context(), a, []string{"keys", "rotate"}); err == nil {
		t.Error("rotate without ORDERTUNE_MASTER_KEYS succeeded")
	}
}

func TestKeysRewrap(t *testing.T) {
	url := pgtest.DB(t)
	k1, _ := seal.GenerateKey("k1")
	k2, _ := seal.GenerateKey("k2")
	old, _ := seal.ParseRing(k1)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var ids []string
	for range 3 {
		var id string
		if err := conn.QueryRow(t.Context(), `INSERT INTO users (email, role, password_hash, created_at, updated_at)
			VALUES ('u' || gen_random_uuid() || '@example.com', 'subscriber', 'x', now(), now()) RETURNING id`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		ct, _ := old.Seal([]byte("SECRET"), id, "totp_secret")
		if _, err := conn.Exec(t.Context(), `UPDATE users SET totp_secret = $2 WHERE id = $1`, id, ct); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}

	a, out, errOut := testApp(map[string]string{"DATABASE_URL": url, "ORDERTUNE_MASTER_KEYS": k2 + "," + k1})
	if err := run(t.Context(), a, []string{"keys", "rewrap", "--batch", "2"}); err != nil {
		t.Fatalf("rewrap: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out.String(), "re-sealed 3; left under older keys: 0") || !strings.Contains(errOut.String(), "3 ciphertexts under older keys") {
		t.Errorf("rewrap output:\n%s\nprogress:\n%s", out, errOut)
	}
	if strings.Contains(out.String()+errOut.String(), "SECRET") {
		t.Error("rewrap printed a secret")
	}

	// A ciphertext that does not open keeps the old key needed: non-zero exit.
	if _, err := conn.Exec(t.Context(), `UPDATE users SET totp_secret = (SELECT totp_secret FROM users WHERE id = $1) WHERE id = $2`, ids[0], ids[1]); err != nil {
		t.Fatal(err)
	}
	k3, _ := seal.GenerateKey("k3")
	a, out, _ = testApp(map[string]string{"DATABASE_URL": url, "ORDERTUNE_MASTER_KEYS": k3 + "," + k2})
	err = run(t.Context(), a, []string{"keys", "rewrap"})
	if err == nil || !strings.Contains(err.Error(), "still under older keys") {
		t.Errorf("rewrap with a moved ciphertext: %v\n%s", err, out)
	}
}
