package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/config"
	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/rewrap"
	"github.com/ordertune/ordertune/internal/seal"
)

const keysUsage = `usage: ordertune keys generate | rotate | rewrap | audit-generate

  generate [--id ID]  print a new key ring entry id:base64key
  rotate [--id ID]    print a new ORDERTUNE_MASTER_KEYS value: a fresh primary key
                      first, then the current keys (which keep opening old data);
                      restart every server with it, then run rewrap
  rewrap [--batch N]  re-seal every sealed column under the primary key, online,
                      and report what is left under older keys; once it reports
                      zero, drop the older keys from ORDERTUNE_MASTER_KEYS
  audit-generate      print a new ORDERTUNE_AUDIT_SIGNING_KEY (Ed25519, for the
                      audit checkpoints; not a master key) on stdout and its
                      public key, for ordertune audit verify, on stderr
`

// cmdKeys manages the master key ring: ORDERTUNE_MASTER_KEYS and
// DATABASE_URL come from the environment (or NAME_FILE).
func cmdKeys(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, keysUsage)
		return errors.New("keys needs one of generate, rotate, rewrap, audit-generate")
	}
	switch args[0] {
	case "generate":
		return keysGenerate(a, args[1:])
	case "rotate":
		return keysRotate(a, args[1:])
	case "rewrap":
		return keysRewrap(ctx, a, args[1:])
	case "audit-generate":
		return keysAuditGenerate(a)
	case "-h", "--help", "help":
		fmt.Fprint(a.stderr, keysUsage)
		return nil
	}
	fmt.Fprint(a.stderr, keysUsage)
	return fmt.Errorf("unknown keys action %q", args[0])
}

// newKeyID names a key by its creation date, with a random suffix so two
// keys made the same day differ.
func newKeyID(now time.Time) string {
	b := make([]byte, 2)
	rand.Read(b)
	return "k" + now.UTC().Format("20060102") + "-" + hex.EncodeToString(b)
}

func keysGenerate(a *app, args []string) error {
	fs := newFlagSet(a, "keys generate")
	id := fs.String("id", "", "key id (letters, digits, - or _; default k<date>-<random>)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *id == "" {
		*id = newKeyID(time.Now())
	}
	entry, err := seal.GenerateKey(*id)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, entry)
	return nil
}

// keysAuditGenerate prints a new audit signing key on stdout, so it can go
// straight to a secret file, and its public key on stderr.
func keysAuditGenerate(a *app) error {
	key, pub, err := audit.GenerateSigningKey()
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, key)
	fmt.Fprintf(a.stderr, "public key (ordertune audit verify --public-key): %s\n", pub)
	return nil
}

func keysRotate(a *app, args []string) error {
	fs := newFlagSet(a, "keys rotate")
	id := fs.String("id", "", "id of the new primary key (default k<date>-<random>)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(a.getenv, false)
	if err != nil {
		return err
	}
	if cfg.MasterKeys == "" {
		return errors.New("ORDERTUNE_MASTER_KEYS is not set: there is nothing to rotate (ordertune keys generate makes a first key)")
	}
	ring, err := seal.ParseRing(cfg.MasterKeys)
	if err != nil {
		return err
	}
	if *id == "" {
		*id = newKeyID(time.Now())
	}
	for _, old := range ring.IDs() {
		if old == *id {
			return fmt.Errorf("key id %q is already in the ring; choose another with --id", *id)
		}
	}
	entry, err := seal.GenerateKey(*id)
	if err != nil {
		return err
	}
	var current []string
	for _, item := range strings.Split(cfg.MasterKeys, ",") {
		if item = strings.TrimSpace(item); item != "" {
			current = append(current, item)
		}
	}
	next := strings.Join(append([]string{entry}, current...), ",")
	if _, err := seal.ParseRing(next); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, next)
	fmt.Fprintf(a.stderr, "new primary key %q; restart every server with this ORDERTUNE_MASTER_KEYS, then run `ordertune keys rewrap`\n", *id)
	return nil
}

func keysRewrap(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet(a, "keys rewrap")
	batch := fs.Int("batch", 100, "rows re-sealed per transaction")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(a.getenv, false)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errors.New("DATABASE_URL is not set")
	}
	if cfg.MasterKeys == "" {
		return errors.New("ORDERTUNE_MASTER_KEYS is not set")
	}
	ring, err := seal.ParseRing(cfg.MasterKeys)
	if err != nil {
		return err
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	cols := rewrap.Product()
	before, err := rewrap.Remaining(ctx, pool, ring, cols)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "primary key %q; %d ciphertexts under older keys\n", ring.Primary(), rewrap.Total(before))
	results, err := rewrap.Run(ctx, pool, ring, cols, rewrap.Options{
		BatchSize: *batch,
		Progress: func(r rewrap.Result) {
			fmt.Fprintf(a.stderr, "  %s: %d re-sealed, %d did not open\n", r.Column, r.Resealed, r.Failed)
		},
	})
	var resealed, failed int64
	for _, r := range results {
		resealed += r.Resealed
		failed += r.Failed
		fmt.Fprintf(a.stdout, "%-40s re-sealed %d, did not open %d\n", r.Column, r.Resealed, r.Failed)
	}
	if err != nil {
		return err
	}
	left, err := rewrap.Remaining(ctx, pool, ring, cols)
	if err != nil {
		return err
	}
	total := rewrap.Total(left)
	fmt.Fprintf(a.stdout, "re-sealed %d; left under older keys: %d\n", resealed, total)
	for col, ids := range left {
		for id, n := range ids {
			fmt.Fprintf(a.stdout, "  %s: %d under key %q\n", col, n, id)
		}
	}
	if failed > 0 || total > 0 {
		return fmt.Errorf("%d ciphertexts are still under older keys (%d did not open with this ring): keep the older keys until this reports zero", total, failed)
	}
	fmt.Fprintln(a.stdout, "every ciphertext is under the primary key: the older keys can be dropped from ORDERTUNE_MASTER_KEYS")
	return nil
}
