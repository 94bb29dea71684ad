package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/config"
	"github.com/ordertune/ordertune/internal/postgres"
)

const auditUsage = `usage: ordertune audit verify [--checkpoints FILE] [--public-key KEY]

  verify   recompute the audit hash chain (DATABASE_URL) and print the result;
           with --checkpoints, also check it against the signed checkpoints
           the server wrote (ORDERTUNE_AUDIT_CHECKPOINTS), which catches a chain
           cut short and rewound. The key that verifies them is --public-key,
           else the public half of ORDERTUNE_AUDIT_SIGNING_KEY. Exits 1 when
           the chain does not hold. The run is itself audited.
`

// cmdAudit verifies the audit trail from the command line.
func cmdAudit(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprint(a.stderr, auditUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errors.New("audit needs verify")
	}
	fs := newFlagSet(a, "audit verify")
	file := fs.String("checkpoints", "", "file of signed checkpoints to check the chain against")
	pubFlag := fs.String("public-key", "", "base64 Ed25519 public key of the checkpoints (default: from ORDERTUNE_AUDIT_SIGNING_KEY)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := config.Load(a.getenv, false)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errors.New("DATABASE_URL is not set")
	}
	var cps []audit.Checkpoint
	var pub ed25519.PublicKey
	if *file != "" {
		if pub, err = checkpointKey(cfg, *pubFlag); err != nil {
			return err
		}
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		cps, err = audit.ParseCheckpoints(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	v, err := audit.VerifyAgainst(ctx, pool, cps, pub)
	if err != nil {
		return err
	}
	details := map[string]any{"ok": v.OK, "checked": v.Checked, "unsealed": v.Unsealed, "checkpoints": v.Checkpoints, "via": "cli"}
	if v.FirstBad != nil {
		details["first_bad_seq"] = v.FirstBad.Seq
	}
	if err := audit.Append(ctx, pool, audit.Event{Action: "audit.verify", Details: details}); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintln(a.stdout, string(b))
	if !v.OK {
		p := v.FirstBad
		fmt.Fprintf(a.stderr, "ordertune: the audit chain does not hold at entry %d: %s\n", p.Seq, p.Reason)
		if p.Checkpoint != "" {
			fmt.Fprintf(a.stderr, "ordertune: contradicted: %s\n", p.Checkpoint)
		}
		return exitCode(1)
	}
	return nil
}

// checkpointKey is the public key that verifies checkpoints: the flag's,
// else the signing key's.
func checkpointKey(cfg config.Config, flag string) (ed25519.PublicKey, error) {
	if flag != "" {
		return audit.ParsePublicKey(flag)
	}
	if cfg.AuditSigningKey == "" {
		return nil, errors.New("--checkpoints needs the public key: --public-key, or ORDERTUNE_AUDIT_SIGNING_KEY")
	}
	s, err := audit.ParseSigningKey(cfg.AuditSigningKey)
	if err != nil {
		return nil, fmt.Errorf("ORDERTUNE_AUDIT_SIGNING_KEY: %w", err)
	}
	return s.PublicKey(), nil
}
