package audit_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// record appends n audit rows, each in its own transaction.
func record(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			return audit.Record(ctx, tx, audit.Event{Action: "test.event", Subject: fmt.Sprint(i), Details: map[string]any{"i": i}})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// tamper runs sql as an attacker with the database owner's rights who
// also switches the append-only triggers off (a superuser can): what the
// roles and triggers do not stop, the chain must still reveal.
func tamper(t *testing.T, pool *pgxpool.Pool, sql string) {
	t.Helper()
	owner := pgtest.OwnerPool(t, pool)
	if _, err := owner.Exec(context.Background(), "BEGIN; SET LOCAL session_replication_role = replica; "+sql+"; COMMIT"); err != nil {
		t.Fatal(err)
	}
}

func seal(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	s := audit.NewSealer(audit.SealerConfig{Pool: pool, Batch: 4})
	for {
		n, err := s.SealOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// TestVerifyNamesTheFirstBadEntry seals ten rows, tampers with them in
// each way an attacker with database access could, and expects verify to
// point at the exact entry.
func TestVerifyNamesTheFirstBadEntry(t *testing.T) {
	tests := []struct {
		name   string
		tamper string // SQL; entries are seq 1..10
		want   *audit.Problem
	}{
		{name: "untouched"},
		{name: "update details", tamper: `UPDATE audit_events SET details = '{"i": 99}' WHERE seq = 4`,
			want: &audit.Problem{Seq: 4, Reason: "hash mismatch: the row was changed after it was sealed"}},
		{name: "update time", tamper: `UPDATE audit_events SET at = at + interval '1 microsecond' WHERE seq = 7`,
			want: &audit.Problem{Seq: 7, Reason: "hash mismatch: the row was changed after it was sealed"}},
		{name: "delete", tamper: `DELETE FROM audit_events WHERE seq = 5`,
			want: &audit.Problem{Seq: 5, Reason: "entry 5 is missing (deleted or renumbered); the chain continues at 6"}},
		{name: "swap two rows", tamper: `UPDATE audit_events SET seq = -1 WHERE seq = 3; UPDATE audit_events SET seq = 3 WHERE seq = 6; UPDATE audit_events SET seq = 6 WHERE seq = -1`,
			want: &audit.Problem{Seq: 3, Reason: "previous-hash link broken: entries were swapped, moved or removed before this one"}},
		{name: "swap contents", tamper: `UPDATE audit_events a SET subject = b.subject FROM audit_events b WHERE (a.seq, b.seq) IN ((2, 8), (8, 2))`,
			want: &audit.Problem{Seq: 2, Reason: "hash mismatch: the row was changed after it was sealed"}},
		{name: "cut the end", tamper: `DELETE FROM audit_events WHERE seq >= 9`,
			want: &audit.Problem{Seq: 9, Reason: "the chain ends at 8 but was sealed up to 10: entries were deleted from the end"}},
		{name: "rehash one row", tamper: `UPDATE audit_events SET hash = sha256(hash) WHERE seq = 10`,
			want: &audit.Problem{Seq: 10, Reason: "hash mismatch: the row was changed after it was sealed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			pool := pgtest.Pool(t)
			record(t, pool, 10)
			seal(t, pool)
			if tt.tamper != "" {
				tamper(t, pool, tt.tamper)
			}
			v, err := audit.Verify(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != nil {
				// The entry named is the one at that position now.
				var id int64
				_ = pool.QueryRow(ctx, `SELECT id FROM audit_events WHERE seq = (SELECT min(seq) FROM audit_events WHERE seq >= $1)`, tt.want.Seq).Scan(&id)
				if tt.name != "cut the end" {
					tt.want.ID = id
				}
			}
			if diff := cmp.Diff(tt.want, v.FirstBad); diff != "" {
				t.Errorf("first bad entry (-want +got):\n%s", diff)
			}
			if v.OK != (tt.want == nil) {
				t.Errorf("ok = %v, want %v", v.OK, tt.want == nil)
			}
		})
	}
}

// TestSealingContinuesTheChain seals in several passes while rows keep
// coming, and the chain verifies as one.
func TestSealingContinuesTheChain(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	for round := 0; round < 3; round++ {
		record(t, pool, 5)
		seal(t, pool)
	}
	record(t, pool, 2) // left unsealed
	v, err := audit.Verify(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(audit.Verification{OK: true, Checked: 15, Unsealed: 2}, v, cmpIgnoreTime); diff != "" {
		t.Errorf("verification (-want +got):\n%s", diff)
	}
}

func TestSealerStopsWithItsContext(t *testing.T) {
	pool := pgtest.Pool(t)
	record(t, pool, 3)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s := audit.NewSealer(audit.SealerConfig{Pool: pool})
	go func() { s.Run(ctx); close(done) }()
	// Run seals at once on start; wait for it through verify.
	for {
		v, err := audit.Verify(context.Background(), pool)
		if err != nil {
			t.Fatal(err)
		}
		if v.Unsealed == 0 && v.Checked == 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

var cmpIgnoreTime = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".At" }, cmp.Ignore())
