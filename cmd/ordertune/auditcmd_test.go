package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
)

// TestAuditVerifyCheckpoints runs `ordertune audit verify --checkpoints`
// against a chain the server sealed and checkpointed, then as an attacker
// with the owner's rights (triggers off) deletes the tail and rewinds the
// chain head, or truncates both: the chain alone still verifies, the
// checkpoints do not, and the command says which checkpoint is
// contradicted.
func TestAuditVerifyCheckpoints(t *testing.T) {
	a, out, errOut := testApp(nil)
	if err := run(t.Context(), a, []string{"keys", "audit-generate"}); err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(out.String())
	_, pub, ok := strings.Cut(strings.TrimSpace(errOut.String()), "): ")
	if !ok {
		t.Fatalf("audit-generate printed no public key: %q", errOut)
	}
	if _, err := audit.ParseSigningKey(key); err != nil {
		t.Fatalf("audit-generate printed %q: %v", key, err)
	}

	for _, tc := range []struct{ name, tamper string }{
		{"delete the tail and rewind the head", `DELETE FROM audit_events WHERE seq > 12;
			UPDATE audit_chain_head SET seq = 12, hash = (SELECT hash FROM audit_events WHERE seq = 12)`},
		{"truncate both", `TRUNCATE audit_events; TRUNCATE audit_chain_head`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			url := pgtest.DB(t)
			pool, err := postgres.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			file := filepath.Join(t.TempDir(), "checkpoints.jsonl")
			signer, _ := audit.ParseSigningKey(key)
			sealer := audit.NewSealer(audit.SealerConfig{Pool: pool, Signer: signer, CheckpointFile: file})
			for _, n := range []int{10, 5} {
				sealAndCheckpoint(t, pool, sealer, n)
			}
			verify := func(env map[string]string, args ...string) (string, error) {
				env["DATABASE_URL"] = url
				a, out, errOut := testApp(env)
				err := run(ctx, a, append([]string{"audit", "verify"}, args...))
				return out.String() + errOut.String(), err
			}
			for _, env := range []map[string]string{{"ORDERTUNE_AUDIT_SIGNING_KEY": key}, {}} {
				args := []string{"--checkpoints", file}
				if len(env) == 0 {
					args = append(args, "--public-key", pub)
				}
				if got, err := verify(env, args...); err != nil || !strings.Contains(got, `"ok": true`) || !strings.Contains(got, `"checkpoints": 2`) {
					t.Fatalf("verify an intact chain: %v\n%s", err, got)
				}
			}

			owner := pgtest.OwnerURL(url)
			ownerPool, err := postgres.Open(ctx, owner)
			if err != nil {
				t.Fatal(err)
			}
			defer ownerPool.Close()
			if _, err := ownerPool.Exec(ctx, "BEGIN; SET LOCAL session_replication_role = replica; "+tc.tamper+"; COMMIT"); err != nil {
				t.Fatal(err)
			}
			if got, err := verify(map[string]string{}); err != nil || !strings.Contains(got, `"ok": true`) {
				t.Fatalf("the chain alone should still verify after the attack (that is the hole): %v\n%s", err, got)
			}
			got, err := verify(map[string]string{"ORDERTUNE_AUDIT_SIGNING_KEY": key}, "--checkpoints", file)
			var ec exitCode
			if !errors.As(err, &ec) || ec != 1 || !strings.Contains(got, `"ok": false`) ||
				!strings.Contains(got, "contradicted: checkpoint of entry 15 signed at") {
				t.Fatalf("verify with checkpoints after the attack: %v\n%s", err, got)
			}
			var runs int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = 'audit.verify' AND details->>'via' = 'cli'`).Scan(&runs); err != nil || runs < 2 {
				t.Errorf("audited verify runs = %d, %v; want each run recorded", runs, err)
			}
		})
	}
}

// sealAndCheckpoint appends n audit rows, seals them and signs the head.
func sealAndCheckpoint(t *testing.T, pool *pgxpool.Pool, s *audit.Sealer, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if err := audit.Append(ctx, pool, audit.Event{Action: "test.event"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SealOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAuditVerifyNeedsAKeyForCheckpoints(t *testing.T) {
	a, _, _ := testApp(map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/x"})
	err := run(t.Context(), a, []string{"audit", "verify", "--checkpoints", "f"})
	if err == nil || !strings.Contains(err.Error(), "public key") {
		t.Fatalf("err = %v, want one asking for the public key", err)
	}
}
