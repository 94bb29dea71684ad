package auth

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
)

// TokenPrefix starts every API token, so scanners can spot a leaked one.
const TokenPrefix = "ot_"

// Token is an API token's record; the token itself is shown once at
// creation and stored only as a hash.
type Token struct {
	ID         string
	Name       string
	Scopes     []string
	CreatedBy  string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

const tokenColumns = `id, name, scopes, created_by, created_at, last_used_at, revoked_at`

func scanToken(row pgx.Row) (Token, error) {
	var t Token
	err := row.Scan(&t.ID, &t.Name, &t.Scopes, &t.CreatedBy, &t.CreatedAt, &t.LastUsedAt, &t.RevokedAt)
	t.CreatedAt = t.CreatedAt.UTC()
	return t, err
}

// CreateToken makes an API token acting for the admin actorID with the
// given scopes, and returns its record and the token, which cannot be
// shown again.
func (s *Service) CreateToken(ctx context.Context, actorID, name string, scopes []string, ip string) (Token, string, error) {
	name = strings.TrimSpace(name)
	var fields []errs.FieldError
	if name == "" || len(name) > 100 {
		fields = append(fields, errs.FieldError{Field: "name", Message: "must be 1 to 100 characters"})
	}
	if len(scopes) == 0 {
		fields = append(fields, errs.FieldError{Field: "scopes", Message: "name at least one scope"})
	}
	for _, sc := range scopes {
		if !KnownScope(sc) {
			fields = append(fields, errs.FieldError{Field: "scopes", Message: "unknown scope; known: " + ScopeSignalsWrite})
			break
		}
	}
	if len(fields) > 0 {
		return Token{}, "", errs.Fields("invalid token", fields...)
	}
	raw, err := s.randomToken(32)
	if err != nil {
		return Token{}, "", internal("create token", err)
	}
	raw = TokenPrefix + raw
	now := s.now()
	var t Token
	err = s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		t, err = scanToken(tx.QueryRow(ctx, `
			INSERT INTO api_tokens (token_hash, name, scopes, created_by, created_at)
			VALUES ($1, $2, $3, $4, $5) RETURNING `+tokenColumns, digest(raw), name, scopes, actorID, now))
		if err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Event{At: now, UserID: actorID, ActorID: actorID, IP: ip, Action: "token.created",
			Subject: t.ID, Details: map[string]any{"name": name, "scopes": scopes}}); err != nil {
			return err
		}
		return s.securityEvent(ctx, tx, actorID, "security.token_created", map[string]any{"ip": ip, "name": name, "scopes": scopes})
	})
	if err != nil {
		return Token{}, "", internal("create token", err)
	}
	return t, raw, nil
}

// ListTokens returns every API token's record, newest first.
func (s *Service) ListTokens(ctx context.Context) ([]Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM api_tokens ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, internal("list tokens", err)
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Token, error) { return scanToken(r) })
	if err != nil {
		return nil, internal("list tokens", err)
	}
	return ts, nil
}

// RevokeToken stops the token id from working. Revoking a revoked token
// changes nothing.
func (s *Service) RevokeToken(ctx context.Context, actorID, id, ip string) error {
	if !ValidID(id) {
		return errs.E(errs.NotFound, "no such token")
	}
	now := s.now()
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var revoked *time.Time
		err := tx.QueryRow(ctx, `SELECT revoked_at FROM api_tokens WHERE id = $1 FOR UPDATE`, id).Scan(&revoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return errs.E(errs.NotFound, "no such token")
		}
		if err != nil || revoked != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = $2 WHERE id = $1`, id, now); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Event{At: now, UserID: actorID, ActorID: actorID, IP: ip, Action: "token.revoked", Subject: id})
	})
	if err != nil {
		return internal("revoke token", err)
	}
	return nil
}

// AuthenticateToken returns the principal of a bearer token and records
// its use. Revoked tokens, and tokens of admins who are disabled or no
// longer admins, do not work.
func (s *Service) AuthenticateToken(ctx context.Context, raw string) (Principal, error) {
	if !strings.HasPrefix(raw, TokenPrefix) || len(raw) > 128 {
		return Principal{}, errs.E(errs.Unauthenticated, "invalid API token")
	}
	var p Principal
	err := s.pool.QueryRow(ctx, `
		UPDATE api_tokens t SET last_used_at = $2
		FROM users u
		WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.id = t.created_by
		  AND u.role = 'admin' AND u.disabled_at IS NULL AND u.locked_at IS NULL
		RETURNING t.id, t.scopes, u.id, u.email`, digest(raw), s.now()).Scan(&p.TokenID, &p.Scopes, &p.UserID, &p.Email)
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, errs.E(errs.Unauthenticated, "invalid API token")
	}
	if err != nil {
		return Principal{}, internal("authenticate token", err)
	}
	p.Full = true
	return p, nil
}
