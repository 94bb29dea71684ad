package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/rejection"
	"github.com/ordertune/ordertune/internal/trading"
)

// TestRejectionAdvice: for each refusal the simulator can answer, the
// confirm's problem, the user's order detail and the admin log carry
// IBKR's own words with the kind and its one line of what to do.
func TestRejectionAdvice(t *testing.T) {
	e := newTradeEnv(t)
	tickers := []string{"AAPL", "MSFT", "NVDA", "AMZN", "META", "TSLA", "GOOGL"}
	kinds := append(ibkrsim.RejectionKinds(), "Order rejected by the exchange: contract halted")
	for i, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			text, ok := ibkrsim.RejectionText(kind)
			want := rejection.Kind(kind)
			if !ok { // a text of no known kind
				text, want = kind, rejection.Unknown
			}
			advice := rejection.Explain(text).Advice
			_, body := e.call(t, e.admin, http.MethodPost, "/signals", newSignalBody(func(m map[string]any) { m["ticker"] = tickers[i] }))
			sig := decodeAs[trading.Signal](t, body)
			value, _ := json.Marshal(kind)
			e.sim.Fault(t, ibkrsim.Fault{Path: "/iserver/account/*/orders", Kind: ibkrsim.FaultReject, Value: value, Count: 1})
			st, body := e.call(t, e.a, http.MethodPost, "/signals/"+sig.ID+"/confirm", map[string]string{"side": "BUY"}, "Idempotency-Key", fmt.Sprintf("rej-%d", i))
			p := decodeAs[Problem](t, body)
			if st != http.StatusUnprocessableEntity || p.Confirmation == nil || p.Confirmation.Error == nil {
				t.Fatalf("confirm = %d %s, want 422 with the failed confirmation", st, body)
			}
			type shown struct{ Code, Message, Kind, Advice string }
			view := func(e *trading.ConfirmationError) shown {
				s := shown{Code: e.Code, Message: e.Message}
				if e.Kind != nil {
					s.Kind = *e.Kind
				}
				if e.Advice != nil {
					s.Advice = *e.Advice
				}
				return s
			}
			wantShown := shown{Code: string(p.Code), Message: text, Kind: string(want), Advice: advice}
			if p.Detail != text {
				t.Errorf("problem detail = %q, want IBKR's words %q", p.Detail, text)
			}
			if diff := cmp.Diff(wantShown, view(p.Confirmation.Error)); diff != "" {
				t.Errorf("confirm's error (-want +got):\n%s", diff)
			}
			for _, path := range []string{"/confirmations/" + p.Confirmation.ID, "/admin/confirmations/" + p.Confirmation.ID} {
				who := e.a
				if path[1] == 'a' {
					who = e.admin
				}
				st, body := e.call(t, who, http.MethodGet, path, nil)
				c := decodeAs[trading.Confirmation](t, body)
				if st != http.StatusOK || c.Error == nil {
					t.Fatalf("GET %s = %d %s", path, st, body)
				}
				if diff := cmp.Diff(wantShown, view(c.Error)); diff != "" {
					t.Errorf("GET %s error (-want +got):\n%s", path, diff)
				}
			}
		})
	}
	if got := e.logs.String(); !containsAll(got, `"rejection_kind":"insufficient_funds"`, `"advice":`) {
		t.Errorf("the outcome's log line lacks the refusal's kind and advice")
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestReplyQuestionsRecorded: an allowlisted question IBKR asks is
// confirmed, and it and Ordertune's answer are in the confirmation's
// status history and the audit trail; a question off the allowlist fails
// the confirmation and is recorded the same way.
func TestReplyQuestionsRecorded(t *testing.T) {
	e := newTradeEnv(t)
	type asked struct{ IDs, Answer, Reason string }
	check := func(t *testing.T, id string, want asked) {
		t.Helper()
		st, body := e.call(t, e.a, http.MethodGet, "/confirmations/"+id, nil)
		c := decodeAs[trading.Confirmation](t, body)
		if st != http.StatusOK {
			t.Fatalf("GET confirmation = %d %s", st, body)
		}
		var got []asked
		for i, ev := range c.Events {
			if ev.Question == nil {
				continue
			}
			q := ev.Question
			got = append(got, asked{IDs: strings.Join(q.MessageIDs, ","), Answer: q.Answer, Reason: q.Reason})
			if q.Text == "" || !strings.Contains(ev.Message, q.Text) || i == len(c.Events)-1 {
				t.Errorf("history entry %d %+v: want IBKR's text, before the outcome", i, ev)
			}
		}
		if diff := cmp.Diff([]asked{want}, got); diff != "" {
			t.Errorf("questions in the history (-want +got):\n%s", diff)
		}
		var details []byte
		err := e.pool.QueryRow(t.Context(), `SELECT details FROM audit_events
			WHERE action = 'confirmation.question' AND subject = $1 AND user_id = $2`, id, e.a.id).Scan(&details)
		if err != nil {
			t.Fatalf("audit row of the question: %v", err)
		}
		var q trading.Question
		if err := json.Unmarshal(details, &q); err != nil || q.Answer != want.Answer || strings.Join(q.MessageIDs, ",") != want.IDs {
			t.Errorf("audit details = %s (%v), want %+v", details, err, want)
		}
	}
	for i, tc := range []struct {
		id     string
		status int
		want   asked
	}{
		{"o354", http.StatusCreated, asked{"o354", trading.AnswerConfirmed, "on the platform's allowlist"}},
		{"o999", http.StatusUnprocessableEntity, asked{"o999", trading.AnswerDeclined, "not on the allowlist"}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			_, body := e.call(t, e.admin, http.MethodPost, "/signals", newSignalBody(func(m map[string]any) { m["ticker"] = []string{"AAPL", "MSFT"}[i] }))
			sig := decodeAs[trading.Signal](t, body)
			value, _ := json.Marshal(tc.id)
			e.sim.Fault(t, ibkrsim.Fault{Path: "/iserver/account/*/orders", Kind: ibkrsim.FaultReplyQuestion, Value: value, Count: 1})
			st, body := e.call(t, e.a, http.MethodPost, "/signals/"+sig.ID+"/confirm", map[string]string{"side": "BUY"}, "Idempotency-Key", "q-"+tc.id)
			if st != tc.status {
				t.Fatalf("confirm = %d %s, want %d", st, body, tc.status)
			}
			var id string
			if st == http.StatusCreated {
				id = decodeAs[trading.Confirmation](t, body).ID
			} else {
				id = decodeAs[Problem](t, body).Confirmation.ID
			}
			check(t, id, tc.want)
		})
	}
}
