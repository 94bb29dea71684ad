// Package rewrap re-seals Ordertune's sealed columns under the key ring's
// primary key, online: in small batches, each row locked only for the
// moment it is rewritten, while the server keeps reading and writing.
//
// Rotation: add a new key in front of ORDERTUNE_MASTER_KEYS (ordertune
// keys rotate) and restart the servers, so every new ciphertext uses it
// and old ones still open; run ordertune keys rewrap until it reports no
// row left under an old key; then drop the old key from the ring.
package rewrap

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/seal"
)

// Column is one sealed column. Its ciphertexts were sealed with the
// associated data (user id, Field), followed by the value of ScopeColumn
// when one is named.
type Column struct {
	Table string
	// Key lists the primary key columns, for resumable batches.
	Key []string
	// UserColumn holds the user id bound into the associated data.
	UserColumn string
	// Column is the sealed bytea column; NULL means no secret.
	Column string
	// Field is the field name bound into the associated data.
	Field string
	// ScopeColumn, when set, is a column whose value is bound into the
	// associated data after the field name (the broker's mode).
	ScopeColumn string
}

// Name returns "table.column".
func (c Column) Name() string { return c.Table + "." + c.Column }

// aad is the associated data of one row's ciphertext.
func (c Column) aad(userID, scope string) []string {
	if c.ScopeColumn == "" {
		return []string{userID, c.Field}
	}
	return []string{userID, c.Field, scope}
}

// Product lists every sealed column of Ordertune. A feature that adds one
// adds it here; a test checks each one against the migrated schema.
func Product() []Column {
	var cols []Column
	// internal/broker: aad (user id, column name, mode).
	for _, f := range []string{"signature_key", "encryption_key", "access_token_secret", "dh_params", "account_id"} {
		cols = append(cols, Column{Table: "broker_connections", Key: []string{"user_id", "mode"}, UserColumn: "user_id",
			Column: f, Field: f, ScopeColumn: "mode"})
	}
	// internal/auth: the active and the pending TOTP secret share the field
	// name "totp_secret", so enabling moves the ciphertext unchanged.
	for _, col := range []string{"totp_secret", "totp_pending_secret"} {
		cols = append(cols, Column{Table: "users", Key: []string{"id"}, UserColumn: "id", Column: col, Field: "totp_secret"})
	}
	// internal/canary: the key ring's canary, so a rotation leaves no
	// reason to keep the old key for it.
	cols = append(cols, Column{Table: "seal_canary", Key: []string{"id"}, UserColumn: "name", Column: "sealed", Field: "canary"})
	return cols
}

// Result is what Run did to one column.
type Result struct {
	Column string `json:"column"`
	// Resealed rows now under the primary key.
	Resealed int64 `json:"resealed"`
	// Failed rows did not open (a key missing from the ring, or a damaged
	// or moved ciphertext); they are left as they are.
	Failed int64 `json:"failed"`
}

// Options tunes Run.
type Options struct {
	// BatchSize is how many rows one transaction re-seals (default 100).
	BatchSize int
	// Progress, when set, is called after each batch with the column's
	// running totals.
	Progress func(Result)
}

// keyIDExpr extracts the key id from a ciphertext in SQL: byte 0 is the
// format version (1), byte 1 the id's length, then the id. CASE keeps
// get_byte away from values too short to hold a header.
func keyIDExpr(col string) string {
	return fmt.Sprintf(`(CASE WHEN length(%[1]s) < 2 THEN NULL WHEN get_byte(%[1]s, 0) <> 1 THEN NULL
		ELSE substring(%[1]s FROM 3 FOR get_byte(%[1]s, 1)) END)`, col)
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

// Run re-seals every ciphertext of cols that is not under ring's primary
// key, in batches of rows locked FOR UPDATE, and returns per-column counts.
// Rows written meanwhile by servers that already seal with the primary are
// skipped; run it until Remaining reports zero.
func Run(ctx context.Context, pool *pgxpool.Pool, ring *seal.Ring, cols []Column, o Options) ([]Result, error) {
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	var out []Result
	for _, c := range cols {
		r, err := runColumn(ctx, pool, ring, c, o)
		out = append(out, r)
		if err != nil {
			return out, fmt.Errorf("rewrap %s: %w", c.Name(), err)
		}
	}
	return out, nil
}

func runColumn(ctx context.Context, pool *pgxpool.Pool, ring *seal.Ring, c Column, o Options) (Result, error) {
	res := Result{Column: c.Name()}
	col := ident(c.Column)
	keys := make([]string, len(c.Key))
	keyText := make([]string, len(c.Key))
	params := make([]string, len(c.Key))
	for i, k := range c.Key {
		keys[i] = ident(k)
		keyText[i] = ident(k) + "::text"
		params[i] = fmt.Sprintf("$%d", i+4)
	}
	scope := "''"
	if c.ScopeColumn != "" {
		scope = ident(c.ScopeColumn) + "::text"
	}
	// Keyset pagination over the primary key: each batch resumes after the
	// last row seen, so rows that fail to open are passed over once.
	q := fmt.Sprintf(`SELECT ctid, %s, %s::text, %s, %s FROM %s
		WHERE %s IS NOT NULL AND %s IS DISTINCT FROM $1
		  AND ($2 OR (%s) > (%s))
		ORDER BY %s LIMIT $3 FOR UPDATE`,
		strings.Join(keyText, ", "), ident(c.UserColumn), scope, col, ident(c.Table),
		col, keyIDExpr(col),
		strings.Join(keys, ", "), strings.Join(params, ", "),
		strings.Join(keys, ", "))
	upd := fmt.Sprintf(`UPDATE %s SET %s = $1 WHERE ctid = $2`, ident(c.Table), col)
	primary := []byte(ring.Primary())

	first := true
	last := make([]any, len(c.Key))
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		n := 0
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			args := append([]any{primary, first, o.BatchSize}, last...)
			if first {
				for i := range c.Key {
					args[3+i] = nil
				}
			}
			rows, err := tx.Query(ctx, q, args...)
			if err != nil {
				return err
			}
			type row struct {
				tid         pgtype.TID
				keys        []string
				user, scope string
				ct          []byte
			}
			var batch []row
			for rows.Next() {
				r := row{keys: make([]string, len(c.Key))}
				dst := []any{&r.tid}
				for i := range r.keys {
					dst = append(dst, &r.keys[i])
				}
				dst = append(dst, &r.user, &r.scope, &r.ct)
				if err := rows.Scan(dst...); err != nil {
					rows.Close()
					return err
				}
				batch = append(batch, r)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			for _, r := range batch {
				n++
				for i, k := range r.keys {
					last[i] = k
				}
				aad := c.aad(r.user, r.scope)
				plain, err := ring.Open(r.ct, aad...)
				if err != nil {
					res.Failed++
					continue
				}
				ct, err := ring.Seal(plain, aad...)
				clear(plain)
				if err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, upd, ct, r.tid); err != nil {
					return err
				}
				res.Resealed++
			}
			return nil
		})
		if err != nil {
			return res, err
		}
		first = false
		if o.Progress != nil && n > 0 {
			o.Progress(res)
		}
		if n < o.BatchSize {
			return res, nil
		}
	}
}

// Remaining counts, per column, the ciphertexts not under ring's primary
// key, by the key id that sealed them ("?" for one with no readable
// header).
func Remaining(ctx context.Context, pool *pgxpool.Pool, ring *seal.Ring, cols []Column) (map[string]map[string]int64, error) {
	out := map[string]map[string]int64{}
	for _, c := range cols {
		col := ident(c.Column)
		q := fmt.Sprintf(`SELECT coalesce(encode(%[1]s, 'escape'), '?'), count(*) FROM %[2]s
			WHERE %[3]s IS NOT NULL AND %[1]s IS DISTINCT FROM $1 GROUP BY 1`,
			keyIDExpr(col), ident(c.Table), col)
		rows, err := pool.Query(ctx, q, []byte(ring.Primary()))
		if err != nil {
			return nil, fmt.Errorf("count %s: %w", c.Name(), err)
		}
		for rows.Next() {
			var id string
			var n int64
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("count %s: %w", c.Name(), err)
			}
			if out[c.Name()] == nil {
				out[c.Name()] = map[string]int64{}
			}
			out[c.Name()][id] = n
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("count %s: %w", c.Name(), err)
		}
	}
	return out, nil
}

// Total adds up a Remaining answer.
func Total(remaining map[string]map[string]int64) int64 {
	var n int64
	for _, ids := range remaining {
		for _, c := range ids {
			n += c
		}
	}
	return n
}
