// Package canary checks, when the server starts, that its key ring opens
// the secrets this database holds: one known plaintext, sealed on the
// first start, must open with one of the configured master keys. A wrong
// or missing key then stops the start with a clear message, rather than
// surfacing later as undecryptable rows.
package canary

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/rewrap"
	"github.com/ordertune/ordertune/internal/seal"
)

// The canary's associated data, as rewrap.Product lists it: the row's
// name column in the place of a user id, and the field name.
const (
	name  = "key ring canary"
	field = "canary"
)

// plaintext is what the canary seals; any fixed text would do.
var plaintext = []byte("ordertune key ring canary v1")

// Check opens the canary with ring. On the first start (no canary yet)
// it first checks that the ring opens the sealed data already stored, if
// any, then seals and stores the canary. Its error says which key the
// database needs and which the ring holds, never key material.
func Check(ctx context.Context, pool *pgxpool.Pool, ring *seal.Ring, now time.Time) error {
	var sealed []byte
	err := pool.QueryRow(ctx, `SELECT sealed FROM seal_canary WHERE id AND name = $1`, name).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return create(ctx, pool, ring, now)
	}
	if err != nil {
		return fmt.Errorf("read the key ring canary: %w", err)
	}
	return open(ring, sealed)
}

// open checks one canary ciphertext.
func open(ring *seal.Ring, sealed []byte) error {
	got, err := ring.Open(sealed, name, field)
	if err == nil && bytes.Equal(got, plaintext) {
		return nil
	}
	keyID, ok := seal.KeyID(sealed)
	if !ok {
		keyID = "?"
	}
	return fmt.Errorf("refusing to start: no key of ORDERTUNE_MASTER_KEYS (ids %s) opens this database's secrets: "+
		"they were sealed with key %q. Start with the key ring they were sealed with; after a rotation keep the old key "+
		"in the ring until `ordertune keys rewrap` reports nothing left under it",
		strings.Join(ring.IDs(), ", "), keyID)
}

// create stores the canary on the first start, unless the ring cannot open
// the sealed data already there (a database older than the canary, started
// with the wrong key). Two servers starting at once store one canary.
func create(ctx context.Context, pool *pgxpool.Pool, ring *seal.Ring, now time.Time) error {
	if err := checkExisting(ctx, pool, ring); err != nil {
		return err
	}
	ct, err := ring.Seal(plaintext, name, field)
	if err != nil {
		return fmt.Errorf("seal the key ring canary: %w", err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO seal_canary (id, name, sealed, created_at) VALUES (true, $1, $2, $3)
		ON CONFLICT (id) DO NOTHING`, name, ct, now); err != nil {
		return fmt.Errorf("store the key ring canary: %w", err)
	}
	var stored []byte
	if err := pool.QueryRow(ctx, `SELECT sealed FROM seal_canary WHERE id`).Scan(&stored); err != nil {
		return fmt.Errorf("read the key ring canary: %w", err)
	}
	return open(ring, stored)
}

// checkExisting tries one stored ciphertext of each sealed column; when
// there are some and none opens, the ring is not this database's.
func checkExisting(ctx context.Context, pool *pgxpool.Pool, ring *seal.Ring) error {
	tried := 0
	var keyIDs []string
	for _, c := range rewrap.Product() {
		if c.Table == "seal_canary" {
			continue
		}
		scope := "''"
		if c.ScopeColumn != "" {
			scope = pgx.Identifier{c.ScopeColumn}.Sanitize() + "::text"
		}
		col := pgx.Identifier{c.Column}.Sanitize()
		q := fmt.Sprintf(`SELECT %s::text, %s, %s FROM %s WHERE %s IS NOT NULL LIMIT 1`,
			pgx.Identifier{c.UserColumn}.Sanitize(), scope, col, pgx.Identifier{c.Table}.Sanitize(), col)
		var user, sc string
		var ct []byte
		err := pool.QueryRow(ctx, q).Scan(&user, &sc, &ct)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return fmt.Errorf("check %s with the key ring: %w", c.Name(), err)
		}
		tried++
		aad := []string{user, c.Field}
		if c.ScopeColumn != "" {
			aad = append(aad, sc)
		}
		if _, err := ring.Open(ct, aad...); err == nil {
			return nil
		}
		if id, ok := seal.KeyID(ct); ok {
			keyIDs = append(keyIDs, id)
		}
	}
	if tried == 0 {
		return nil
	}
	return fmt.Errorf("refusing to start: no key of ORDERTUNE_MASTER_KEYS (ids %s) opens the secrets stored in this database "+
		"(sealed with key ids %s). Start with the key ring they were sealed with",
		strings.Join(ring.IDs(), ", "), strings.Join(keyIDs, ", "))
}
