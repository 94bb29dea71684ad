package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
)

// The audit trail is sealed into a hash chain after the fact, in batches,
// by a background worker: entry n's hash covers its own content, its
// sequence number and entry n-1's hash, so changing, deleting or swapping
// any sealed row breaks the chain at that row. The newest sealed entry is
// also kept in audit_chain_head, so that cutting rows off the end is
// detected too. Sealing never runs in a request's transaction: rows are
// written unsealed, and the worker alone (under a transaction-level
// advisory lock, so one instance at a time) extends the chain.

// chainLock is the advisory lock key of the sealer.
const chainLock = 0x6f7464_61756474 // "otd" "audt"

// SealerConfig configures the sealing worker.
type SealerConfig struct {
	Pool *pgxpool.Pool
	Log  zerolog.Logger
	// Interval is the pause between sealing passes (default 2 s).
	Interval time.Duration
	// Batch bounds the rows sealed per transaction (default 500).
	Batch int

	// Signer, when set, signs a checkpoint of the chain head once
	// CheckpointEvery entries were sealed since the last one (default 100)
	// or CheckpointInterval has passed with new entries (default 1m), and
	// on start. Each checkpoint is logged and, with CheckpointFile, also
	// appended to that file.
	Signer             *Signer
	CheckpointFile     string
	CheckpointEvery    int64
	CheckpointInterval time.Duration
	// Now is the clock of checkpoints (default time.Now).
	Now func() time.Time
}

// Sealer seals audit rows into the hash chain.
type Sealer struct {
	cfg SealerConfig
	// The newest checkpoint written, used by Run's goroutine only;
	// lastSeq is -1 before the first.
	lastSeq int64
	lastAt  time.Time
}

// NewSealer returns a Sealer.
func NewSealer(cfg SealerConfig) *Sealer {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 100
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sealer{cfg: cfg, lastSeq: -1}
}

// Run seals every Interval until ctx ends.
func (s *Sealer) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		for {
			n, err := s.SealOnce(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.cfg.Log.Warn().Err(err).Msg("sealing the audit trail failed; retrying next interval")
				}
				break
			}
			if n < s.cfg.Batch {
				break
			}
		}
		if s.cfg.Signer != nil && ctx.Err() == nil {
			if err := s.maybeCheckpoint(ctx); err != nil {
				s.cfg.Log.Error().Err(err).Msg("could not write an audit checkpoint; retrying next interval")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SealOnce seals up to one batch of rows, oldest id first, and returns how
// many it sealed.
func (s *Sealer) SealOnce(ctx context.Context) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.cfg.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(chainLock)); err != nil {
			return err
		}
		var seq int64
		var prev []byte
		err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_chain_head`).Scan(&seq, &prev)
		if errors.Is(err, pgx.ErrNoRows) {
			seq, prev, err = 0, genesis(), nil
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+entryColumns+` FROM audit_events
			WHERE seq IS NULL ORDER BY id LIMIT $1 FOR UPDATE`, s.cfg.Batch)
		if err != nil {
			return err
		}
		list, err := pgx.CollectRows(rows, scanEntry)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return nil
		}
		ids := make([]int64, len(list))
		seqs := make([]int64, len(list))
		prevs := make([][]byte, len(list))
		hashes := make([][]byte, len(list))
		for i, e := range list {
			seq++
			h := entryHash(seq, prev, e)
			ids[i], seqs[i], prevs[i], hashes[i] = e.id, seq, prev, h
			prev = h
		}
		if _, err := tx.Exec(ctx, `
			UPDATE audit_events a SET seq = v.seq, prev_hash = v.prev, hash = v.hash
			FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[]) AS v(id, seq, prev, hash)
			WHERE a.id = v.id`, ids, seqs, prevs, hashes); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO audit_chain_head (id, seq, hash) VALUES (true, $1, $2)
			ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash`, seq, prev); err != nil {
			return err
		}
		n = len(list)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("seal audit trail: %w", err)
	}
	return n, nil
}

// maybeCheckpoint writes a checkpoint when the head moved on enough, or
// long enough ago, since the last one.
func (s *Sealer) maybeCheckpoint(ctx context.Context) error {
	seq, hash, err := head(ctx, s.cfg.Pool)
	if err != nil || seq <= s.lastSeq || seq == 0 {
		return err
	}
	now := s.cfg.Now()
	if s.lastSeq >= 0 && seq-s.lastSeq < s.cfg.CheckpointEvery && now.Sub(s.lastAt) < s.cfg.CheckpointInterval {
		return nil
	}
	if _, err := s.checkpoint(seq, hash, now); err != nil {
		return err
	}
	return nil
}

// Checkpoint signs the chain head now, logs it and appends it to the
// checkpoint file. It fails without a Signer or before anything is sealed.
// It must not run concurrently with Run.
func (s *Sealer) Checkpoint(ctx context.Context) (Checkpoint, error) {
	if s.cfg.Signer == nil {
		return Checkpoint{}, errors.New("audit checkpoint: no signing key")
	}
	seq, hash, err := head(ctx, s.cfg.Pool)
	if err != nil {
		return Checkpoint{}, err
	}
	if seq == 0 {
		return Checkpoint{}, errors.New("audit checkpoint: nothing is sealed yet")
	}
	return s.checkpoint(seq, hash, s.cfg.Now())
}

func (s *Sealer) checkpoint(seq int64, hash []byte, now time.Time) (Checkpoint, error) {
	c := s.cfg.Signer.Sign(seq, hash, now)
	if s.cfg.CheckpointFile != "" {
		if err := AppendCheckpoint(s.cfg.CheckpointFile, c); err != nil {
			return Checkpoint{}, err
		}
	}
	s.cfg.Log.Info().Int64("seq", c.Seq).Str("hash", c.Hash).Time("checkpoint_at", c.At).Str("key", c.Key).
		Str("sig", c.Sig).Msg("audit checkpoint")
	s.lastSeq, s.lastAt = seq, now
	return c, nil
}

// head reads the chain head: seq 0 when nothing is sealed.
func head(ctx context.Context, pool *pgxpool.Pool) (int64, []byte, error) {
	var seq int64
	var hash []byte
	err := pool.QueryRow(ctx, `SELECT seq, hash FROM audit_chain_head`).Scan(&seq, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, genesis(), nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("read audit chain head: %w", err)
	}
	return seq, hash, nil
}

// entry is one audit row as the chain covers it.
type entry struct {
	id                  int64
	at                  time.Time
	userID, actorID, ip *string
	action, subject     string
	details             string
	seq                 *int64
	prevHash, hash      []byte
}

const entryColumns = `id, at, user_id::text, actor_id::text, ip, action, subject, details::text, seq, prev_hash, hash`

func scanEntry(r pgx.CollectableRow) (entry, error) {
	var e entry
	err := r.Scan(&e.id, &e.at, &e.userID, &e.actorID, &e.ip, &e.action, &e.subject, &e.details, &e.seq, &e.prevHash, &e.hash)
	return e, err
}

// genesis is the "previous hash" of the first entry.
func genesis() []byte {
	h := sha256.Sum256([]byte("ordertune audit chain v1"))
	return h[:]
}

// entryHash is SHA-256 over the sequence number, the previous hash and
// every column of the row, each length-prefixed so no two rows encode
// alike. The time is in microseconds, PostgreSQL's precision.
func entryHash(seq int64, prev []byte, e entry) []byte {
	h := sha256.New()
	var num [8]byte
	putInt := func(v int64) {
		binary.BigEndian.PutUint64(num[:], uint64(v))
		h.Write(num[:])
	}
	putBytes := func(b []byte) {
		putInt(int64(len(b)))
		h.Write(b)
	}
	putOpt := func(s *string) {
		if s == nil {
			putInt(-1)
			return
		}
		putBytes([]byte(*s))
	}
	putInt(seq)
	putBytes(prev)
	putInt(e.id)
	putInt(e.at.UnixMicro())
	putOpt(e.userID)
	putOpt(e.actorID)
	putOpt(e.ip)
	putBytes([]byte(e.action))
	putBytes([]byte(e.subject))
	putBytes([]byte(e.details))
	return h.Sum(nil)
}

// Problem names the first entry where the chain does not hold.
type Problem struct {
	// Seq is the chain position where verification failed.
	Seq int64 `json:"seq"`
	// ID is the audit row found there (0 when the row is missing).
	ID int64 `json:"id"`
	// Reason says what is wrong, e.g. "hash mismatch: the row was changed".
	Reason string `json:"reason"`
	// Checkpoint names the signed checkpoint the chain contradicts, if any.
	Checkpoint string `json:"checkpoint,omitempty"`
}

// Verification is the result of recomputing the chain.
type Verification struct {
	OK bool `json:"ok"`
	// Checked is how many sealed entries were verified before any problem.
	Checked int64 `json:"checked"`
	// Unsealed is how many rows wait for the sealing worker.
	Unsealed int64 `json:"unsealed"`
	// FirstBad is the first broken entry, nil when the chain holds.
	FirstBad *Problem  `json:"first_bad"`
	At       time.Time `json:"verified_at"`
	// Checkpoints is how many signed checkpoints the chain matched.
	Checkpoints int `json:"checkpoints,omitempty"`
}

// Verify recomputes the whole chain in sequence order and reports the first
// entry that does not match: a changed row (its hash), a deleted one (a gap
// in the sequence), rows swapped or moved (the previous-hash link), or rows
// cut off the end (the chain head).
func Verify(ctx context.Context, pool *pgxpool.Pool) (Verification, error) {
	return VerifyAgainst(ctx, pool, nil, nil)
}

// VerifyAgainst verifies the chain like Verify and also against signed
// checkpoints (see Checkpoint): each must be signed by pub, and the chain
// must reach each one's entry with the hash it vouches for. A chain cut
// short and its head rewound, or emptied, verifies on its own; it fails
// here, naming the checkpoint it contradicts.
func VerifyAgainst(ctx context.Context, pool *pgxpool.Pool, cps []Checkpoint, pub ed25519.PublicKey) (Verification, error) {
	v := Verification{At: time.Now().UTC()}
	bySeq := map[int64][]Checkpoint{}
	var last *Checkpoint
	for i, c := range cps {
		if !c.Valid(pub) {
			v.FirstBad = &Problem{Seq: c.Seq, Checkpoint: c.String(),
				Reason: fmt.Sprintf("checkpoint %d of %d does not verify with the public key %s: forged, altered, or signed with another key", i+1, len(cps), KeyID(pub))}
			return v, nil
		}
		bySeq[c.Seq] = append(bySeq[c.Seq], c)
		if last == nil || c.Seq > last.Seq {
			last = &cps[i]
		}
	}
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE seq IS NULL`).Scan(&v.Unsealed); err != nil {
			return err
		}
		var headSeq int64
		var headHash []byte
		err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_chain_head`).Scan(&headSeq, &headHash)
		if errors.Is(err, pgx.ErrNoRows) {
			headSeq, headHash, err = 0, genesis(), nil
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+entryColumns+` FROM audit_events WHERE seq IS NOT NULL ORDER BY seq`)
		if err != nil {
			return err
		}
		defer rows.Close()
		prev := genesis()
		var want int64 = 1
		for rows.Next() {
			e, err := scanEntry(rows)
			if err != nil {
				return err
			}
			switch {
			case *e.seq != want:
				v.FirstBad = &Problem{Seq: want, ID: e.id, Reason: fmt.Sprintf("entry %d is missing (deleted or renumbered); the chain continues at %d", want, *e.seq)}
			case !bytes.Equal(e.prevHash, prev):
				v.FirstBad = &Problem{Seq: want, ID: e.id, Reason: "previous-hash link broken: entries were swapped, moved or removed before this one"}
			case !bytes.Equal(entryHash(want, prev, e), e.hash):
				v.FirstBad = &Problem{Seq: want, ID: e.id, Reason: "hash mismatch: the row was changed after it was sealed"}
			}
			for _, c := range bySeq[want] {
				if v.FirstBad == nil && c.Hash != hex.EncodeToString(e.hash) {
					v.FirstBad = &Problem{Seq: want, ID: e.id, Checkpoint: c.String(),
						Reason: "entry differs from its signed checkpoint: the chain was rewritten from here on"}
				}
				v.Checkpoints++
			}
			if v.FirstBad != nil {
				return nil
			}
			prev = e.hash
			v.Checked++
			want++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		switch {
		case last != nil && last.Seq > v.Checked:
			v.FirstBad = &Problem{Seq: v.Checked + 1, Checkpoint: last.String(),
				Reason: fmt.Sprintf("the chain ends at %d but a signed checkpoint vouches for entry %d: entries were deleted and the chain head rewound", v.Checked, last.Seq)}
		case v.Checked < headSeq:
			v.FirstBad = &Problem{Seq: v.Checked + 1, Reason: fmt.Sprintf("the chain ends at %d but was sealed up to %d: entries were deleted from the end", v.Checked, headSeq)}
		case v.Checked > headSeq || !bytes.Equal(prev, headHash):
			v.FirstBad = &Problem{Seq: headSeq, Reason: "the chain does not end where it was sealed (head " + hex.EncodeToString(headHash[:4]) + "…)"}
		}
		return nil
	})
	if err != nil {
		return Verification{}, fmt.Errorf("verify audit chain: %w", err)
	}
	v.OK = v.FirstBad == nil
	return v, nil
}
