// Package ids makes and checks the UUIDs that name rows (confirmations,
// signals, users, events, endpoints). It is a leaf: every layer uses it.
package ids

import "github.com/google/uuid"

// New returns a random (version 4) UUID in its canonical form.
func New() string { return uuid.NewString() }

// Valid reports whether s is a UUID in its canonical form: 36 characters,
// hex digits with hyphens where they belong. Anything else cannot name a
// row, so a caller answers "not found" without a query.
func Valid(s string) bool { return len(s) == 36 && uuid.Validate(s) == nil }
