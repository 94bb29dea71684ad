package risk

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
)

// Platform is Admin → Risk (GET /admin/risk): the ceilings in force, the
// environment's ones they override, and the halts.
type Platform struct {
	Limits
	Environment Limits    `json:"environment"`
	Halted      Halts     `json:"halted"`
	HaltReason  string    `json:"halt_reason"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// HaltsUpdate changes the halt of the modes sent.
type HaltsUpdate struct {
	Live  *bool `json:"live"`
	Paper *bool `json:"paper"`
}

// PlatformUpdate is a PUT /admin/risk: the fields sent change; a null
// ceiling goes back to the environment's value.
type PlatformUpdate struct {
	LimitsUpdate
	Halted     HaltsUpdate `json:"halted"`
	HaltReason *string     `json:"halt_reason"`
}

// Platform returns the platform's ceilings and halts.
func (s *Service) Platform(ctx context.Context) (Platform, error) {
	var p Platform
	var own Limits
	err := s.pool.QueryRow(ctx, `
		SELECT max_order_value::text, max_shares_per_order::text, max_orders_per_day::text, max_daily_value::text,
			halted_live, halted_paper, halt_reason, updated_at
		FROM risk_platform`).Scan(&own.MaxOrderValue, &own.MaxSharesPerOrder, &own.MaxOrdersPerDay, &own.MaxDailyValue,
		&p.Halted.Live, &p.Halted.Paper, &p.HaltReason, &p.UpdatedAt)
	if err != nil {
		return Platform{}, fmt.Errorf("read platform risk: %w", err)
	}
	p.Limits = s.ceilingsOver(own)
	p.Environment = s.ceilings
	p.UpdatedAt = p.UpdatedAt.UTC()
	return p, nil
}

// SetPlatform changes the ceilings and halts, by actorID. Halting a mode
// needs a reason (users see it); each change is audited with who and why.
// A user's own limit above a lowered ceiling stays stored: the lower one
// applies.
func (s *Service) SetPlatform(ctx context.Context, actorID string, in PlatformUpdate, ip string) (Platform, error) {
	var bad []errs.FieldError
	var stored Limits
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var before Halts
		var reason string
		err := tx.QueryRow(ctx, `
			SELECT max_order_value::text, max_shares_per_order::text, max_orders_per_day::text, max_daily_value::text,
				halted_live, halted_paper, halt_reason
			FROM risk_platform FOR UPDATE`).Scan(&stored.MaxOrderValue, &stored.MaxSharesPerOrder, &stored.MaxOrdersPerDay,
			&stored.MaxDailyValue, &before.Live, &before.Paper, &reason)
		if err != nil {
			return err
		}
		ceilings, err := in.LimitsUpdate.apply(stored, Limits{})
		if err != nil {
			return err
		}
		after := before
		if in.Halted.Live != nil {
			after.Live = *in.Halted.Live
		}
		if in.Halted.Paper != nil {
			after.Paper = *in.Halted.Paper
		}
		if in.HaltReason != nil {
			reason = strings.TrimSpace(*in.HaltReason)
		}
		if (after.Live || after.Paper) && reason == "" {
			bad = append(bad, errs.FieldError{Field: "halt_reason", Message: "say why trading is halted: users see it"})
		}
		if len(reason) > 500 {
			bad = append(bad, errs.FieldError{Field: "halt_reason", Message: "must be at most 500 characters"})
		}
		if len(bad) > 0 {
			return errs.Fields("invalid platform risk settings", bad...)
		}
		now := s.nowUTC()
		if _, err := tx.Exec(ctx, `
			UPDATE risk_platform SET max_order_value = $1::numeric, max_shares_per_order = $2::bigint,
				max_orders_per_day = $3::integer, max_daily_value = $4::numeric,
				halted_live = $5, halted_paper = $6, halt_reason = $7, updated_by = $8, updated_at = $9`,
			ceilings.MaxOrderValue, ceilings.MaxSharesPerOrder, ceilings.MaxOrdersPerDay, ceilings.MaxDailyValue,
			after.Live, after.Paper, reason, actorID, now); err != nil {
			return err
		}
		if !ceilings.equal(stored) {
			if err := audit.Record(ctx, tx, audit.Event{At: now, ActorID: actorID, IP: ip, Action: "risk.ceilings",
				Details: map[string]any{"before": stored, "after": ceilings}}); err != nil {
				return err
			}
		}
		for mode, ch := range map[string][2]bool{Live: {before.Live, after.Live}, Paper: {before.Paper, after.Paper}} {
			if ch[0] == ch[1] {
				continue
			}
			action := "risk.resume"
			if ch[1] {
				action = "risk.halt"
			}
			if err := audit.Record(ctx, tx, audit.Event{At: now, ActorID: actorID, IP: ip, Action: action, Subject: mode,
				Details: map[string]any{"mode": mode, "reason": reason}}); err != nil {
				return err
			}
		}
		return nil
	})
	if e := errs.As(err); e != nil {
		return Platform{}, e
	}
	if err != nil {
		return Platform{}, fmt.Errorf("set platform risk: %w", err)
	}
	return s.Platform(ctx)
}
