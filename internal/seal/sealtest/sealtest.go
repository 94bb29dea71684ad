// Package sealtest holds what tests of sealed data share: generated keys
// and the rings built from them, as a key rotation has them.
package sealtest

import (
	"strings"
	"testing"

	"github.com/ordertune/ordertune/internal/seal"
)

// Key generates a key with id and returns its spec, as the master key
// setting holds it.
func Key(t testing.TB, id string) string {
	t.Helper()
	k, err := seal.GenerateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Ring parses a ring of the key specs, the primary first.
func Ring(t testing.TB, specs ...string) *seal.Ring {
	t.Helper()
	r, err := seal.ParseRing(strings.Join(specs, ","))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// NewRing returns a ring of freshly generated keys with ids, the primary
// first.
func NewRing(t testing.TB, ids ...string) *seal.Ring {
	t.Helper()
	specs := make([]string, len(ids))
	for i, id := range ids {
		specs[i] = Key(t, id)
	}
	return Ring(t, specs...)
}
