package broker

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/trading"
)

// QuestionPolicy is the reply-question allowlist in force for one user.
type QuestionPolicy struct {
	// Allowed are the message ids confirmed when IBKR asks them (and
	// suppressed when the user's brokerage session starts).
	Allowed []string
	// Override reports whether it is the user's own list, set by an
	// admin, rather than the platform's default.
	Override bool
}

// QuestionSettings is a user's reply-question allowlist as admins see and
// change it (GET and PUT /admin/users/{id}/reply-questions).
type QuestionSettings struct {
	// PlatformDefault is the platform's allowlist (the server's
	// configuration).
	PlatformDefault []string `json:"platform_default"`
	// Override is the user's own list, nil when the platform default
	// applies; an empty list surfaces every question: any question fails
	// the confirmation with IBKR's text.
	Override []string `json:"override"`
	// Effective is the list in force.
	Effective []string   `json:"effective"`
	UpdatedAt *time.Time `json:"updated_at"`
}

// maxOverride bounds a user's own list (IBKR has a few dozen message ids).
const maxOverride = 50

var messageIDPattern = regexp.MustCompile(`^o[0-9]{1,6}$`)

// questionPolicy reads the allowlist in force for userID.
func (s *Service) questionPolicy(ctx context.Context, userID string) (QuestionPolicy, error) {
	var allowed []string
	err := s.pool.QueryRow(ctx, `SELECT allowed FROM reply_question_overrides WHERE user_id = $1`, userID).Scan(&allowed)
	if errors.Is(err, pgx.ErrNoRows) {
		return QuestionPolicy{Allowed: s.allowed}, nil
	}
	if err != nil {
		return QuestionPolicy{}, fmt.Errorf("reply-question allowlist of %s: %w", userID, err)
	}
	return QuestionPolicy{Allowed: allowed, Override: true}, nil
}

// QuestionSettings returns userID's reply-question allowlist: the
// platform's default, the user's own list when an admin set one, and the
// list in force.
func (s *Service) QuestionSettings(ctx context.Context, userID string) (QuestionSettings, error) {
	var qs QuestionSettings
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		qs, err = s.questionSettingsTx(ctx, tx, userID)
		return err
	})
	return qs, err
}

func (s *Service) questionSettingsTx(ctx context.Context, tx pgx.Tx, userID string) (QuestionSettings, error) {
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id::text = $1)`, userID).Scan(&exists); err != nil {
		return QuestionSettings{}, fmt.Errorf("reply questions of %s: %w", userID, err)
	}
	if !exists {
		return QuestionSettings{}, errs.E(errs.NotFound, "no such user")
	}
	qs := QuestionSettings{PlatformDefault: slices.Clone(s.allowed), Effective: slices.Clone(s.allowed)}
	var at time.Time
	err := tx.QueryRow(ctx, `SELECT allowed, updated_at FROM reply_question_overrides WHERE user_id = $1`, userID).Scan(&qs.Override, &at)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return QuestionSettings{}, fmt.Errorf("reply questions of %s: %w", userID, err)
	default:
		if qs.Override == nil {
			qs.Override = []string{}
		}
		qs.Effective = qs.Override
		at = at.UTC()
		qs.UpdatedAt = &at
	}
	if qs.PlatformDefault == nil {
		qs.PlatformDefault = []string{}
	}
	if qs.Effective == nil {
		qs.Effective = []string{}
	}
	return qs, nil
}

// SetQuestionOverride sets userID's own reply-question allowlist (an
// empty list surfaces every question), or with nil goes back to the
// platform default. It is audited, and the user's cached session is
// dropped, so the next brokerage session suppresses the new list.
func (s *Service) SetQuestionOverride(ctx context.Context, actor Actor, userID string, allowed []string) (QuestionSettings, error) {
	if allowed != nil {
		if len(allowed) > maxOverride {
			return QuestionSettings{}, errs.Fields("invalid allowlist", errs.FieldError{Field: "allowed", Message: fmt.Sprintf("at most %d message ids", maxOverride)})
		}
		clean := make([]string, 0, len(allowed))
		for _, id := range allowed {
			id = strings.TrimSpace(id)
			if !messageIDPattern.MatchString(id) {
				return QuestionSettings{}, errs.Fields("invalid allowlist", errs.FieldError{Field: "allowed", Message: "each entry must be an IBKR message id such as o163"})
			}
			if !slices.Contains(clean, id) {
				clean = append(clean, id)
			}
		}
		allowed = clean
	}
	var qs QuestionSettings
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		before, err := s.questionSettingsTx(ctx, tx, userID)
		if err != nil {
			return err
		}
		if allowed == nil {
			_, err = tx.Exec(ctx, `DELETE FROM reply_question_overrides WHERE user_id = $1`, userID)
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO reply_question_overrides (user_id, allowed, updated_by, updated_at)
				VALUES ($1, $2, $3, $4)
				ON CONFLICT (user_id) DO UPDATE SET allowed = $2, updated_by = $3, updated_at = $4`,
				userID, allowed, nullID(actor.UserID), s.now().UTC())
		}
		if err != nil {
			return fmt.Errorf("set reply questions of %s: %w", userID, err)
		}
		if qs, err = s.questionSettingsTx(ctx, tx, userID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Event{At: s.now(), UserID: userID, ActorID: actor.UserID, IP: actor.IP,
			Action: "broker.reply_questions", Subject: "reply-questions",
			Details: map[string]any{"before": before.Override, "after": qs.Override}})
	})
	if err != nil {
		return QuestionSettings{}, err
	}
	s.cache.Invalidate(userID)
	return qs, nil
}

func nullID(id string) *string {
	if id == "" {
		return nil
	}
	return &id
}

// recordingPolicy answers IBKR's questions by pol and notes each question
// and answer in asked.
func recordingPolicy(pol QuestionPolicy, asked *[]trading.Question) ibkr.ReplyPolicy {
	confirm := ibkr.ConfirmMessageIDs(pol.Allowed...)
	return func(q ibkr.Question) bool {
		ok := confirm(q)
		tq := trading.Question{MessageIDs: slices.Clone(q.MessageIDs), Text: strings.Join(q.Messages, " "), Answer: trading.AnswerConfirmed}
		if tq.MessageIDs == nil {
			tq.MessageIDs = []string{}
		}
		switch {
		case ok && pol.Override:
			tq.Reason = "on this user's allowlist"
		case ok:
			tq.Reason = "on the platform's allowlist"
		case pol.Override && len(pol.Allowed) == 0:
			tq.Answer, tq.Reason = trading.AnswerDeclined, "this user has every question surfaced"
		default:
			tq.Answer, tq.Reason = trading.AnswerDeclined, "not on the allowlist"
		}
		*asked = append(*asked, tq)
		return ok
	}
}
