package audit_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
)

func signer(t *testing.T) *audit.Signer {
	t.Helper()
	key, _, err := audit.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.ParseSigningKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readCheckpoints(t *testing.T, path string) []audit.Checkpoint {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cps, err := audit.ParseCheckpoints(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return cps
}

// TestCheckpointsCatchARewoundChain seals 15 entries with signed
// checkpoints at 10 and 15, then lets an attacker with the owner's rights
// (triggers switched off) erase the newest entries and make the chain
// consistent again. The chain alone verifies; with the checkpoints it
// fails, naming the checkpoint.
func TestCheckpointsCatchARewoundChain(t *testing.T) {
	tests := []struct {
		name    string
		tamper  string // as the owner, triggers off
		after   func(t *testing.T, pool *pgxpool.Pool)
		want    string // in the reason
		wantSeq int64
	}{
		{name: "untouched"},
		{name: "delete the tail and rewind the head",
			tamper:  `DELETE FROM audit_events WHERE seq > 12; UPDATE audit_chain_head SET seq = 12, hash = (SELECT hash FROM audit_events WHERE seq = 12)`,
			want:    "the chain ends at 12 but a signed checkpoint vouches for entry 15",
			wantSeq: 13},
		{name: "truncate both",
			tamper:  `TRUNCATE audit_events; TRUNCATE audit_chain_head`,
			want:    "the chain ends at 0 but a signed checkpoint vouches for entry 15",
			wantSeq: 1},
		{name: "rewrite the tail",
			tamper: `DELETE FROM audit_events WHERE seq > 11; UPDATE audit_chain_head SET seq = 11, hash = (SELECT hash FROM audit_events WHERE seq = 11)`,
			after: func(t *testing.T, pool *pgxpool.Pool) {
				record(t, pool, 6) // new entries 12..17, sealed by the server as usual
				seal(t, pool)
			},
			want:    "entry differs from its signed checkpoint",
			wantSeq: 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			pool := pgtest.Pool(t)
			file := filepath.Join(t.TempDir(), "checkpoints.jsonl")
			sg := signer(t)
			s := audit.NewSealer(audit.SealerConfig{Pool: pool, Signer: sg, CheckpointFile: file})
			for _, n := range []int{10, 5} {
				record(t, pool, n)
				seal(t, pool)
				if _, err := s.Checkpoint(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if tt.tamper != "" {
				tamper(t, pool, tt.tamper)
			}
			if tt.after != nil {
				tt.after(t, pool)
			}
			alone, err := audit.Verify(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			if !alone.OK {
				t.Fatalf("the chain alone: %+v; the attack should leave it consistent", alone.FirstBad)
			}
			v, err := audit.VerifyAgainst(ctx, pool, readCheckpoints(t, file), sg.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if !v.OK || v.Checkpoints != 2 || v.Checked != 15 {
					t.Fatalf("untouched chain: %+v %+v, want ok with 2 checkpoints", v, v.FirstBad)
				}
				return
			}
			if v.OK || v.FirstBad == nil || !strings.Contains(v.FirstBad.Reason, tt.want) || v.FirstBad.Seq != tt.wantSeq ||
				!strings.HasPrefix(v.FirstBad.Checkpoint, "checkpoint of entry 15 signed at ") {
				t.Fatalf("verify with checkpoints = %+v, first bad %+v; want %q at %d naming the checkpoint of entry 15", v, v.FirstBad, tt.want, tt.wantSeq)
			}
		})
	}
}

// TestCheckpointsMustBeSigned: an altered checkpoint, or one checked with
// another key, fails verification.
func TestCheckpointsMustBeSigned(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	file := filepath.Join(t.TempDir(), "checkpoints.jsonl")
	sg := signer(t)
	record(t, pool, 3)
	seal(t, pool)
	if _, err := audit.NewSealer(audit.SealerConfig{Pool: pool, Signer: sg, CheckpointFile: file}).Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	good := readCheckpoints(t, file)
	moved := append([]audit.Checkpoint(nil), good...)
	moved[0].Seq = 2
	for name, tc := range map[string]struct {
		cps []audit.Checkpoint
		key *audit.Signer
	}{
		"altered":     {moved, sg},
		"another key": {good, signer(t)},
	} {
		v, err := audit.VerifyAgainst(ctx, pool, tc.cps, tc.key.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		if v.OK || v.FirstBad == nil || !strings.Contains(v.FirstBad.Reason, "does not verify") {
			t.Errorf("%s: %+v %+v, want a signature failure", name, v, v.FirstBad)
		}
	}
}

// TestSealerWritesCheckpoints runs the sealer: it checkpoints on start and
// again once CheckpointEvery more entries are sealed.
func TestSealerWritesCheckpoints(t *testing.T) {
	pool := pgtest.Pool(t)
	file := filepath.Join(t.TempDir(), "checkpoints.jsonl")
	sg := signer(t)
	record(t, pool, 2)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s := audit.NewSealer(audit.SealerConfig{Pool: pool, Interval: 10 * time.Millisecond, Signer: sg, CheckpointFile: file,
		CheckpointEvery: 5, CheckpointInterval: time.Hour})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor := func(seqs ...int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var got []int64
			if _, err := os.Stat(file); err == nil {
				for _, c := range readCheckpoints(t, file) {
					got = append(got, c.Seq)
				}
			}
			if len(got) == len(seqs) && (len(got) == 0 || got[len(got)-1] == seqs[len(seqs)-1]) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("checkpoints at %v, want %v", got, seqs)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(2)
	record(t, pool, 3) // 5: fewer than 5 since the last checkpoint
	time.Sleep(100 * time.Millisecond)
	waitFor(2)
	record(t, pool, 2) // 7: five since the last one
	waitFor(2, 7)
	v, err := audit.VerifyAgainst(context.Background(), pool, readCheckpoints(t, file), sg.PublicKey())
	if err != nil || !v.OK || v.Checkpoints != 2 {
		t.Fatalf("verify = %+v %v, want ok with 2 checkpoints", v, err)
	}
}

func FuzzParseCheckpoints(f *testing.F) {
	f.Add([]byte(`{"seq":3,"hash":"` + strings.Repeat("ab", 32) + `","at":"2026-12-02T01:00:00Z","key":"00","sig":"AA=="}` + "\n\n"))
	f.Add([]byte(`{"seq":-1}`))
	f.Add([]byte(`{"seq":1,"hash":"zz"} {}`))
	f.Add([]byte(strings.Repeat("x", 5000)))
	f.Fuzz(func(t *testing.T, b []byte) {
		cps, err := audit.ParseCheckpoints(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, c := range cps {
			if c.Seq < 0 || len(c.Hash) != 64 || c.Sig == "" || c.Key == "" {
				t.Fatalf("accepted an incomplete checkpoint %+v", c)
			}
		}
	})
}
