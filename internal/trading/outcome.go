package trading

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
)

// applyOutcome is apply with the OnOutcome hook and the reply questions
// the broker asked: the status change, the questions' history entries and
// audit rows, and what the hook writes (the notification's event and its
// queued deliveries) share one transaction.
func (s *Service) applyOutcome(ctx context.Context, id string, from []Status, o outcome, now time.Time) (Confirmation, bool, error) {
	if s.cfg.OnOutcome == nil && len(o.questions) == 0 {
		return apply(ctx, s.pool, id, from, o, now)
	}
	var c Confirmation
	var changed bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The questions come first in the history: IBKR asked them
		// before it answered the order.
		for _, q := range o.questions {
			if err := recordQuestion(ctx, tx, id, now, q); err != nil {
				return err
			}
		}
		var err error
		if c, changed, err = apply(ctx, tx, id, from, o, now); err != nil {
			return err
		}
		if !changed {
			// Another instance settled the row (and its questions).
			return errUnchanged
		}
		if s.cfg.OnOutcome == nil {
			return nil
		}
		return s.cfg.OnOutcome(ctx, tx, c)
	})
	if errors.Is(err, errUnchanged) {
		return Confirmation{}, false, nil
	}
	if err != nil {
		return Confirmation{}, false, err
	}
	return c, changed, nil
}

// errUnchanged rolls back the questions of an outcome that was not applied.
var errUnchanged = errors.New("confirmation moved on")

// recordQuestionSQL appends a question to the history and the audit trail
// of the confirmation, in one statement.
var recordQuestionSQL = `
		WITH c AS (SELECT id, user_id FROM confirmations WHERE id = $1),
		e AS (
			INSERT INTO confirmation_events (confirmation_id, at, status, message, question)
			SELECT id, $2, 'pending', $3, $4 FROM c)
		` + audit.InsertSelect(audit.Exprs{At: "$2", UserID: "user_id", Action: "'confirmation.question'",
	Subject: "id::text", Details: "$4"}, "c")

// recordQuestion writes q, asked about confirmation id, to its status
// history and the audit trail.
func recordQuestion(ctx context.Context, tx pgx.Tx, id string, at time.Time, q Question) error {
	b, err := json.Marshal(q)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, recordQuestionSQL, id, at, questionMessage(q), b); err != nil {
		return fmt.Errorf("record question of %s: %w", id, err)
	}
	return nil
}

// questionMessage is a question's line in the status history.
func questionMessage(q Question) string {
	answer := "Ordertune answered yes"
	if q.Answer != AnswerConfirmed {
		answer = "Ordertune answered no"
	}
	return fmt.Sprintf("IBKR asked [%s]: %s — %s (%s)", strings.Join(q.MessageIDs, ","), q.Text, answer, q.Reason)
}
