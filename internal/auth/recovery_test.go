package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
)

func TestRecoveryCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	u, pw, codes := e.userWithRecoveryCodes()
	seen := map[string]bool{}
	for _, c := range codes {
		if len(c) != 19 || seen[c] {
			t.Fatalf("recovery code %q malformed or repeated", c)
		}
		seen[c] = true
	}
	if len(codes) != 10 {
		t.Fatalf("%d codes, want 10", len(codes))
	}
	var stored int
	if err := e.svc.pool.QueryRow(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND code_hash = $2`,
		u.ID, []byte(codes[0])).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("a recovery code is stored in clear (%v)", err)
	}

	use := func(code string) error { return e.signInWithRecoveryCode(u, pw, code) }
	if err := use(strings.ToUpper(strings.ReplaceAll(codes[0], "-", " "))); err != nil {
		t.Fatalf("a recovery code typed in capitals with spaces: %v", err)
	}
	wantCode(t, "the same code again", use(codes[0]), errs.Unauthenticated)
	if err := use(codes[1]); err != nil {
		t.Fatalf("a second code: %v", err)
	}

	fresh := e.recoveryCodes(u.ID)
	wantCode(t, "an old code after regeneration", use(codes[2]), errs.Unauthenticated)
	e.clock.Advance(time.Minute)
	if err := use(fresh[9]); err != nil {
		t.Fatalf("a new code: %v", err)
	}
	var detail string
	if err := e.svc.pool.QueryRow(ctx, `SELECT details->>'remaining' FROM audit_events
		WHERE user_id = $1 AND action = 'recovery_code.used' ORDER BY id DESC LIMIT 1`, u.ID).Scan(&detail); err != nil {
		t.Fatal(err)
	}
	if detail != "9" {
		t.Errorf("remaining after one use of a new set = %s, want 9", detail)
	}
}

func TestRecoveryCodesNeed2FA(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u, err := e.svc.CreateUser(context.Background(), "", NewUser{Email: "no2fa@example.com", Role: Subscriber, Password: e.secret("password-123")}, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.RegenerateRecoveryCodes(context.Background(), u.ID, "")
	wantCode(t, "regenerate without 2FA", err, errs.Conflict)
}

// TestRecoveryCodesStoredWithArgon2id: each code is stored as a salted
// argon2id hash (no two salts alike, nothing a plain SHA-256 matches), and
// a legacy row from before migration 8 (an unsalted SHA-256) still works,
// once, until the set is replaced.
func TestRecoveryCodesStoredWithArgon2id(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	u, pw, codes := e.userWithRecoveryCodes()
	rows, err := e.svc.pool.Query(ctx, `SELECT code_hash, coalesce(code_argon2, '') FROM recovery_codes WHERE user_id = $1`, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	salts := map[string]bool{}
	n := 0
	for rows.Next() {
		var legacy []byte
		var phc string
		if err := rows.Scan(&legacy, &phc); err != nil {
			t.Fatal(err)
		}
		n++
		if legacy != nil {
			t.Errorf("a new code has an unsalted digest stored")
		}
		p, salt, _, err := parseHash(phc)
		if err != nil || p.Memory != RecoveryArgon2().Memory || p.Time != RecoveryArgon2().Time {
			t.Fatalf("stored %q: %v, want argon2id with RecoveryArgon2's cost", phc, err)
		}
		salts[string(salt)] = true
	}
	if rows.Err() != nil || n != RecoveryCodeCount || len(salts) != n {
		t.Fatalf("%d rows, %d distinct salts (%v)", n, len(salts), rows.Err())
	}
	var plain int
	if err := e.svc.pool.QueryRow(ctx, `SELECT count(*) FROM recovery_codes WHERE code_hash = $1`,
		digest(normalizeRecovery(codes[0]))).Scan(&plain); err != nil || plain != 0 {
		t.Fatalf("a code matches a plain SHA-256 (%d, %v)", plain, err)
	}

	// A row as migration 8 leaves one made before it.
	legacy := e.secret("abcd-efgh-ijkm-npqr")
	if _, err := e.svc.pool.Exec(ctx, `INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, now())`,
		u.ID, digest(normalizeRecovery(legacy))); err != nil {
		t.Fatal(err)
	}
	use := func(code string) error { return e.signInWithRecoveryCode(u, pw, code) }
	if err := use(legacy); err != nil {
		t.Fatalf("a legacy code: %v", err)
	}
	wantCode(t, "the legacy code again", use(legacy), errs.Unauthenticated)
	if err := use(codes[5]); err != nil {
		t.Fatalf("a new code: %v", err)
	}
}
