package broker

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/trading"
)

// TestQuestionOverride: the platform's allowlist confirms IBKR's question
// and says so; an admin's per-user override that surfaces every question
// makes the same question fail the order with IBKR's text, and going back
// to the default confirms it again. Each change is audited.
func TestQuestionOverride(t *testing.T) {
	e := newEnv(t, envOptions{questions: DefaultAllowedQuestions()})
	ctx := ctxT(t)
	u, _ := e.connected("DU1234567")
	admin := e.user()
	buy := e.buyer(t, ctx, u, "q-")
	place := func() (trading.OrderState, error) {
		// IBKR asks o354 (no market data) whatever was suppressed.
		e.sim.fault(map[string]any{"kind": "reply_question", "path": "/iserver/account/*/orders", "value": "o354", "count": 1})
		return buy()
	}
	type answer struct{ IDs, Answer, Reason string }
	answers := func(qs []trading.Question) []answer {
		var out []answer
		for _, q := range qs {
			out = append(out, answer{IDs: q.MessageIDs[0], Answer: q.Answer, Reason: q.Reason})
			if q.Text == "" {
				t.Errorf("question %v without IBKR's text", q.MessageIDs)
			}
		}
		return out
	}

	st, err := place()
	if err != nil {
		t.Fatalf("order on the platform's allowlist: %v", err)
	}
	if diff := cmp.Diff([]answer{{"o354", trading.AnswerConfirmed, "on the platform's allowlist"}}, answers(st.Questions)); diff != "" {
		t.Errorf("platform default (-want +got):\n%s", diff)
	}

	qs, err := e.svc.SetQuestionOverride(ctx, Actor{UserID: admin}, u, []string{})
	if err != nil {
		t.Fatal(err)
	}
	if qs.Override == nil || len(qs.Override) != 0 || len(qs.Effective) != 0 || len(qs.PlatformDefault) == 0 {
		t.Errorf("settings after surfacing every question = %+v", qs)
	}
	_, err = place()
	var ae *trading.AnsweredError
	if !errors.As(err, &ae) || errs.CodeOf(err) != errs.BrokerQuestionNotAllowlisted {
		t.Fatalf("order with every question surfaced: %v, want broker_question with the questions", err)
	}
	// The new brokerage session suppresses nothing: IBKR's first-order
	// question comes first now, and fails the order.
	if diff := cmp.Diff([]answer{{"o163", trading.AnswerDeclined, "this user has every question surfaced"}}, answers(ae.Questions)); diff != "" {
		t.Errorf("every question surfaced (-want +got):\n%s", diff)
	}
	if e := errs.As(err); e == nil || e.Message == "" {
		t.Errorf("the failure carries no IBKR text: %v", err)
	}

	if _, err := e.svc.SetQuestionOverride(ctx, Actor{UserID: admin}, u, []string{"o354", "bad id"}); errs.CodeOf(err) != errs.Invalid {
		t.Errorf("an invalid message id: %v, want invalid_argument", err)
	}
	if qs, err = e.svc.SetQuestionOverride(ctx, Actor{UserID: admin}, u, []string{"o163", "o354", "o354"}); err != nil || !cmp.Equal(qs.Effective, []string{"o163", "o354"}) {
		t.Fatalf("own list = %+v, %v", qs, err)
	}
	if st, err = place(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]answer{{"o354", trading.AnswerConfirmed, "on this user's allowlist"}}, answers(st.Questions)); diff != "" {
		t.Errorf("user's own list (-want +got):\n%s", diff)
	}
	if qs, err = e.svc.SetQuestionOverride(ctx, Actor{UserID: admin}, u, nil); err != nil || qs.Override != nil || !cmp.Equal(qs.Effective, DefaultAllowedQuestions()) {
		t.Fatalf("back to the default = %+v, %v", qs, err)
	}
	e.wantCount(t, 3, "audited changes",
		`SELECT count(*) FROM audit_events WHERE action = 'broker.reply_questions' AND user_id = $1 AND actor_id = $2`, u, admin)
	if _, err := e.svc.QuestionSettings(ctx, "6f1c1e9a-3b7d-4c1e-9a55-0d4f1e2a3b4c"); errs.CodeOf(err) != errs.NotFound {
		t.Errorf("unknown user: %v, want not_found", err)
	}
}
