package trading

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
)

// Position size modes.
const (
	SizeOff     = "off"     // no orders: the default
	SizeDollars = "dollars" // quantity = floor(value / reference price)
	SizeShares  = "shares"  // quantity = value
)

// PositionSize is how much a user buys per entry signal.
type PositionSize struct {
	Mode string `json:"mode"`
	// Value is a decimal string (dollars) or a whole number of shares; nil
	// when Mode is off.
	Value *string `json:"value"`
}

// Settings are a user's trading settings (GET /settings).
type Settings struct {
	PositionSize PositionSize `json:"position_size"`
}

// check validates and normalizes a position size a client sent.
func (p *PositionSize) check() error {
	field := func(msg string) error {
		return errs.Fields("invalid position size", errs.FieldError{Field: "value", Message: msg})
	}
	switch p.Mode {
	case SizeOff:
		if p.Value != nil && *p.Value != "" {
			return field("must be empty when the position size is off")
		}
		p.Value = nil
	case SizeDollars:
		if p.Value == nil {
			return field("the dollar amount per trade is required")
		}
		r, ok := parseDecimal(*p.Value)
		if !ok || r.Sign() <= 0 || !r.Mul(r, ratInt(100)).IsInt() {
			return field("must be a positive dollar amount with at most 2 decimals, such as \"5000\" or \"2500.50\"")
		}
	case SizeShares:
		if p.Value == nil {
			return field("the number of shares per trade is required")
		}
		r, ok := parseDecimal(*p.Value)
		if !ok || r.Sign() <= 0 || !r.IsInt() {
			return field("must be a positive whole number of shares")
		}
		v := r.Num().String()
		p.Value = &v
	default:
		return errs.Fields("invalid position size", errs.FieldError{Field: "mode", Message: "must be off, dollars or shares"})
	}
	return nil
}

// Settings returns userID's settings; a user who never set a position size
// has it off.
func (s *Service) Settings(ctx context.Context, userID string) (Settings, error) {
	p, err := positionSize(ctx, s.pool, userID)
	if err != nil {
		return Settings{}, fmt.Errorf("read settings: %w", err)
	}
	return Settings{PositionSize: p}, nil
}

// Raises reports whether changing the position size from old to p can
// make an order bigger: off to on, a larger value in the same mode, or a
// switch between dollars and shares (which cannot be compared without a
// price). p and old must be valid.
func (p PositionSize) Raises(old PositionSize) bool {
	switch {
	case p.Mode == SizeOff:
		return false
	case old.Mode != p.Mode || old.Value == nil || p.Value == nil:
		return true
	}
	a, okA := parseDecimal(*old.Value)
	b, okB := parseDecimal(*p.Value)
	return !okA || !okB || b.Cmp(a) > 0
}

// SetPositionSize sets userID's position size.
func (s *Service) SetPositionSize(ctx context.Context, userID string, p PositionSize) (Settings, error) {
	return s.setPositionSize(ctx, userID, p, true)
}

// SetPositionSizeNoRaise sets userID's position size unless that raises
// it (see Raises): a raise is refused with step_up_required, having
// changed nothing. The stored size is compared under its row's lock, so
// concurrent changes cannot slip a raise past the comparison. Lowering it
// or turning it off always works.
func (s *Service) SetPositionSizeNoRaise(ctx context.Context, userID string, p PositionSize) (Settings, error) {
	return s.setPositionSize(ctx, userID, p, false)
}

func (s *Service) setPositionSize(ctx context.Context, userID string, p PositionSize, mayRaise bool) (Settings, error) {
	if err := p.check(); err != nil {
		return Settings{}, err
	}
	now := s.cfg.Now().UTC()
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if !mayRaise {
			old, err := scanPositionSize(tx.QueryRow(ctx, `SELECT mode, value::text FROM position_sizes WHERE user_id = $1 FOR UPDATE`, userID))
			if err != nil {
				return err
			}
			if p.Raises(old) {
				return errs.E(errs.StepUpRequired, "raising the position size needs a fresh two-factor code: confirm it is you, then try again")
			}
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO position_sizes (user_id, mode, value, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id) DO UPDATE SET mode = EXCLUDED.mode, value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
			userID, p.Mode, p.Value, now)
		if err != nil {
			return err
		}
		details := map[string]any{"mode": p.Mode}
		if p.Value != nil {
			details["value"] = *p.Value
		}
		return audit.Record(ctx, tx, audit.Event{At: now, UserID: userID, ActorID: userID, Action: "settings.position_size", Details: details})
	})
	if err != nil {
		return Settings{}, fmt.Errorf("set position size: %w", err)
	}
	return s.Settings(ctx, userID)
}

// querier is what pool and transaction share.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func positionSize(ctx context.Context, q querier, userID string) (PositionSize, error) {
	return scanPositionSize(q.QueryRow(ctx, `SELECT mode, value::text FROM position_sizes WHERE user_id = $1`, userID))
}

// scanPositionSize reads a position_sizes row; none means off.
func scanPositionSize(row pgx.Row) (PositionSize, error) {
	var p PositionSize
	err := row.Scan(&p.Mode, &p.Value)
	if errors.Is(err, pgx.ErrNoRows) {
		return PositionSize{Mode: SizeOff}, nil
	}
	if err != nil {
		return PositionSize{}, err
	}
	p.Value = trimPtr(p.Value)
	return p, nil
}
