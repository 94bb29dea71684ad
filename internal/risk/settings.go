package risk

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ids"
)

// Optional is a JSON field that may be absent (Set false), null (Set, nil
// Value) or a decimal, sent as a string or a number.
type Optional struct {
	Set   bool
	Value *string
}

// UnmarshalJSON records that the field was sent and keeps its text.
func (o *Optional) UnmarshalJSON(b []byte) error {
	o.Set = true
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		o.Value = nil
		return nil
	}
	var v string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
	} else {
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("a limit is a decimal string, a number or null")
		}
		v = n.String()
	}
	o.Value = &v
	return nil
}

// LimitsUpdate changes the limits sent and keeps the others; a null one
// is removed.
type LimitsUpdate struct {
	MaxOrderValue     Optional `json:"max_order_value"`
	MaxSharesPerOrder Optional `json:"max_shares_per_order"`
	MaxOrdersPerDay   Optional `json:"max_orders_per_day"`
	MaxDailyValue     Optional `json:"max_daily_value"`
}

// UserUpdate is a PUT /settings/risk: the fields sent change, the others
// stay; a null limit removes the user's own (the ceiling applies).
type UserUpdate struct {
	LimitsUpdate
	TradingPaused *bool `json:"trading_paused"`
}

// Set sends the named limit (one of Names) as v; a nil v removes it.
func (u *LimitsUpdate) Set(name string, v *string) {
	*u.field(name) = Optional{Set: true, Value: v}
}

func (u *LimitsUpdate) opt(name string) Optional { return *u.field(name) }

// field returns a pointer to the named limit's field (the daily value for
// an unknown name).
func (u *LimitsUpdate) field(name string) *Optional {
	return cmp.Or(limitField(name, &u.MaxOrderValue, &u.MaxSharesPerOrder, &u.MaxOrdersPerDay, &u.MaxDailyValue), &u.MaxDailyValue)
}

// Halts are the platform's halts per mode.
type Halts struct {
	Live  bool `json:"live"`
	Paper bool `json:"paper"`
}

// UserSettings is a user's Settings → Risk (GET /settings/risk): their
// own limits, their switches, and the platform's ceilings and halts.
type UserSettings struct {
	Limits
	TradingPaused   bool   `json:"trading_paused"`
	Suspended       bool   `json:"suspended"`
	SuspendedReason string `json:"suspended_reason"`
	Ceilings        Limits `json:"ceilings"`
	Halted          Halts  `json:"halted"`
	HaltReason      string `json:"halt_reason"`
}

func settingsOf(sn Snapshot) UserSettings {
	return UserSettings{Limits: sn.Own, TradingPaused: sn.Paused, Suspended: sn.Suspended, SuspendedReason: sn.SuspendedReason,
		Ceilings: sn.Ceilings, Halted: Halts{Live: sn.Halted[Live], Paper: sn.Halted[Paper]}, HaltReason: sn.HaltReason}
}

// Settings returns userID's Settings → Risk.
func (s *Service) Settings(ctx context.Context, userID string) (UserSettings, error) {
	sn, err := s.Snapshot(ctx, userID)
	if err != nil {
		return UserSettings{}, err
	}
	return settingsOf(sn), nil
}

// apply checks in against the ceilings and returns own changed by it.
func (in *LimitsUpdate) apply(own, ceilings Limits) (Limits, error) {
	var bad []errs.FieldError
	for _, n := range Names {
		o := in.opt(n)
		if !o.Set {
			continue
		}
		if o.Value == nil {
			*own.field(n) = nil
			continue
		}
		v, err := parseLimit(n, *o.Value)
		if err != nil {
			bad = append(bad, errs.FieldError{Field: n, Message: err.Error()})
			continue
		}
		if c := ceilings.Get(n); c != nil && rat(&v).Cmp(rat(c)) > 0 {
			bad = append(bad, errs.FieldError{Field: n, Message: fmt.Sprintf("must be at most %s, the platform's ceiling", *c)})
			continue
		}
		*own.field(n) = &v
	}
	if len(bad) > 0 {
		return Limits{}, errs.Fields("invalid risk limits", bad...)
	}
	return own, nil
}

// Raises reports whether in would loosen userID's guard: raise or remove
// one of their limits, or resume trading after a pause. Such a change
// needs a fresh second factor; lowering a limit or pausing never does. A
// malformed update is not a raise: it is refused by SetSettings.
func (s *Service) Raises(ctx context.Context, userID string, in UserUpdate) (bool, error) {
	sn, err := s.Snapshot(ctx, userID)
	if err != nil {
		return false, err
	}
	if in.TradingPaused != nil && sn.Paused && !*in.TradingPaused {
		return true, nil
	}
	for _, n := range Names {
		o := in.opt(n)
		old := sn.Own.Get(n)
		if !o.Set || old == nil {
			continue // a first limit is at most the ceiling: never looser
		}
		if o.Value == nil {
			return true, nil
		}
		v, err := parseLimit(n, *o.Value)
		if err == nil && rat(&v).Cmp(rat(old)) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// SetSettings changes userID's own limits and pause switch; a limit above
// the platform's ceiling is refused at its field. The change is audited
// with the values before and after.
func (s *Service) SetSettings(ctx context.Context, userID string, in UserUpdate, ip string) (UserSettings, error) {
	sn, err := s.Snapshot(ctx, userID)
	if err != nil {
		return UserSettings{}, err
	}
	own, err := in.apply(sn.Own, sn.Ceilings)
	if err != nil {
		return UserSettings{}, err
	}
	paused := sn.Paused
	if in.TradingPaused != nil {
		paused = *in.TradingPaused
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO risk_users (user_id, max_order_value, max_shares_per_order, max_orders_per_day, max_daily_value, trading_paused, updated_at)
			VALUES ($1, $2::numeric, $3::bigint, $4::integer, $5::numeric, $6, $7)
			ON CONFLICT (user_id) DO UPDATE SET max_order_value = EXCLUDED.max_order_value,
				max_shares_per_order = EXCLUDED.max_shares_per_order, max_orders_per_day = EXCLUDED.max_orders_per_day,
				max_daily_value = EXCLUDED.max_daily_value, trading_paused = EXCLUDED.trading_paused, updated_at = EXCLUDED.updated_at`,
			userID, own.MaxOrderValue, own.MaxSharesPerOrder, own.MaxOrdersPerDay, own.MaxDailyValue, paused, s.nowUTC())
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Event{At: s.nowUTC(), UserID: userID, ActorID: userID, IP: ip, Action: "risk.settings",
			Details: map[string]any{"before": sn.Own, "after": own, "trading_paused_before": sn.Paused, "trading_paused": paused}})
	})
	if err != nil {
		return UserSettings{}, fmt.Errorf("set risk settings: %w", err)
	}
	return s.Settings(ctx, userID)
}

// SetSuspended suspends (or reinstates) userID's entries, by actorID for
// reason; a suspension needs a reason, shown to the user. Audited.
func (s *Service) SetSuspended(ctx context.Context, actorID, userID string, suspended bool, reason, ip string) error {
	if !ids.Valid(userID) {
		return errs.E(errs.NotFound, "no such user")
	}
	if suspended && reason == "" {
		return errs.Fields("invalid suspension", errs.FieldError{Field: "reason", Message: "say why: the user sees it"})
	}
	if len(reason) > 500 {
		return errs.Fields("invalid suspension", errs.FieldError{Field: "reason", Message: "must be at most 500 characters"})
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			INSERT INTO risk_users (user_id, suspended, suspended_reason, updated_at)
			SELECT u.id, $2, $3, $4 FROM users u WHERE u.id = $1
			ON CONFLICT (user_id) DO UPDATE SET suspended = EXCLUDED.suspended,
				suspended_reason = EXCLUDED.suspended_reason, updated_at = EXCLUDED.updated_at`,
			userID, suspended, reason, s.nowUTC())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errs.E(errs.NotFound, "no such user")
		}
		action := "user.unsuspended"
		if suspended {
			action = "user.suspended"
		}
		return audit.Record(ctx, tx, audit.Event{At: s.nowUTC(), UserID: userID, ActorID: actorID, IP: ip, Action: action,
			Subject: userID, Details: map[string]any{"reason": reason}})
	})
	var e *errs.Error
	if errors.As(err, &e) {
		return e
	}
	if err != nil {
		return fmt.Errorf("set suspension of %s: %w", userID, err)
	}
	return nil
}
