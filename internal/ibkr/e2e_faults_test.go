package ibkr_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// TestE2EFaults produces each error class with the simulator's fault
// injection and checks its classification.
func TestE2EFaults(t *testing.T) {
	ctx := context.Background()
	order := func(coid string) ibkr.Order {
		return ibkr.Order{Conid: 265598, COID: coid, OrderType: "MKT", Side: "BUY", Quantity: 1, TIF: "OPG"}
	}

	t.Run("5xx is unavailable", func(t *testing.T) {
		e := newSimEnv(t, ibkrsim.Config{})
		s := e.connected(ctx)
		e.fault("/iserver/accounts", "status", 503, 1)
		_, err := s.Accounts(ctx)
		var ie *ibkr.Error
		if !errors.As(err, &ie) || ie.Kind != ibkr.KindUnavailable || ie.Status != 503 || !ie.Kind.Retryable() {
			t.Fatalf("err = %v", err)
		}
		if _, err := s.Accounts(ctx); err != nil {
			t.Errorf("after the fault: %v", err)
		}
	})
	t.Run("status faults on signed calls", func(t *testing.T) {
		e := newSimEnv(t, ibkrsim.Config{Questions: ibkrsim.Questions{NoFirstOrderQuestion: true}})
		s := e.connected(ctx)
		tests := []struct {
			path   string
			status int
			call   func() error
			want   ibkr.Kind
		}{
			{"/iserver/accounts", 401, func() error { _, err := s.Accounts(ctx); return err }, ibkr.KindTokenExpired},
			{"/iserver/accounts", 410, func() error { _, err := s.Accounts(ctx); return err }, ibkr.KindTokenExpired},
			{"/iserver/accounts", 403, func() error { _, err := s.Accounts(ctx); return err }, ibkr.KindNoPermission},
			{"/iserver/accounts", 502, func() error { _, err := s.Accounts(ctx); return err }, ibkr.KindUnavailable},
			{"/tickle", 500, func() error { _, err := s.Tickle(ctx); return err }, ibkr.KindUnavailable},
			{"/iserver/account/DU1234567/orders", 503, func() error {
				_, err := s.PlaceOrder(ctx, "DU1234567", order("e2e-503"), confirmAll)
				return err
			}, ibkr.KindUnavailable},
			{"/iserver/account/DU1234567/orders", 504, func() error {
				_, err := s.PlaceOrder(ctx, "DU1234567", order("e2e-504"), confirmAll)
				return err
			}, ibkr.KindOutcomeUnknown},
		}
		for _, tc := range tests {
			e.fault(tc.path, "status", tc.status, 1)
			if got := ibkr.KindOf(tc.call()); got != tc.want {
				t.Errorf("%s → %d: kind %q, want %q", tc.path, tc.status, got, tc.want)
			}
		}
	})
	t.Run("5xx on the handshake", func(t *testing.T) {
		e := newSimEnv(t, ibkrsim.Config{})
		e.fault("/oauth/live_session_token", "status", 500, 1)
		if _, err := ibkr.Handshake(ctx, e.opts, creds(t, e.in)); ibkr.KindOf(err) != ibkr.KindUnavailable {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("429 is rate limited", func(t *testing.T) {
		e := newSimEnv(t, ibkrsim.Config{})
		s := e.connected(ctx)
		e.fault("/iserver/accounts", "status", 429, 1)
		if _, err := s.Accounts(ctx); ibkr.KindOf(err) != ibkr.KindRateLimited {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("simulator pacing 429 carries Retry-After", func(t *testing.T) {
		e := newSimEnv(t, ibkrsim.Config{})
		// A client without its own pacing earns the simulator's 429.
		e.opts.Pacer = ibkr.NewPacerWith(ibkr.PacerConfig{Limits: ibkr.PacerLimits{Global: rate.Inf}})
		s := e.connected(ctx)
		if _, err := s.LiveOrders(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := s.LiveOrders(ctx)
		var ie *ibkr.Error
		if !errors.As(err, &ie) || ie.Kind != ibkr.KindRateLimited || ie.RetryAfter <= 0 || ie.RetryAfter > 5*time.Second {
			t.Fatalf("err = %#v", err)
		}
	})
	t.Run("paced client does not earn a 429", func(t *testing.T) {
		e := newSimEnv(t, ibkrsim.Config{})
		s := e.connected(ctx)
		for range 12 {
			if _, err := s.Accounts(ctx); err != nil {
				t.Fatalf("Accounts: %v", err)
			}
		}
	})
	t.Run("invalid LST is an expired token; renew fixes it", func(t *testing.T) {
		e := newSimEnv(t, ibkrsim.Config{})
		s := e.connected(ctx)
		e.fault("/iserver/accounts", "invalid_lst", nil, 1)
		if _, err := s.Accounts(ctx); ibkr.KindOf(err) != ibkr.KindTokenExpired {
			t.Fatalf("err = %v", err)
		}
		if _, err := s.Accounts(ctx); ibkr.KindOf(err) != ibkr.KindTokenExpired {
			t.Fatalf("the dropped token still works: %v", err)
		}
		if err := s.Renew(ctx, creds(t, e.in)); err != nil {
			t.Fatal(err)
		}
		// A new token needs a new brokerage session, as at IBKR.
		if _, err := s.Accounts(ctx); ibkr.KindOf(err) != ibkr.KindNoBrokerageSession {
			t.Fatalf("after renew, before init: %v", err)
		}
		if _, err := s.InitBrokerage(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Accounts(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("timeout after accept is an unknown outcome; the order exists", func(t *testing.T) {
		e := newSimEnv(t, ibkrsim.Config{Questions: ibkrsim.Questions{NoFirstOrderQuestion: true}})
		s := e.connected(ctx)
		e.fault("/iserver/account/DU1234567/orders", "timeout_after_accept", nil, 1)
		_, err := s.PlaceOrder(ctx, "DU1234567", order("e2e-lost"), confirmAll)
		if ibkr.KindOf(err) != ibkr.KindOutcomeUnknown || ibkr.KindOf(err).Retryable() {
			t.Fatalf("err = %v", err)
		}
		// Reconciling by cOID finds it; re-sending the same cOID is refused.
		live, err := s.LiveOrders(ctx)
		if err != nil || len(live) != 1 || live[0].OrderRef != "e2e-lost" {
			t.Fatalf("live orders = %+v, %v", live, err)
		}
		if _, err := s.PlaceOrder(ctx, "DU1234567", order("e2e-lost"), confirmAll); ibkr.KindOf(err) != ibkr.KindDuplicateOrder {
			t.Fatalf("re-send: %v", err)
		}
	})
	t.Run("timeout on the client's deadline after sending", func(t *testing.T) {
		e := newSimEnv(t, ibkrsim.Config{Questions: ibkrsim.Questions{NoFirstOrderQuestion: true}})
		s := e.connected(ctx)
		// The simulator holds the answer 1 s (and the server waits for the
		// handler on shutdown), the client gives up after 300 ms.
		e.fault("/iserver/account/DU1234567/orders", "latency", "1s", 1)
		dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, err := s.PlaceOrder(dctx, "DU1234567", order("e2e-slow"), confirmAll)
		if ibkr.KindOf(err) != ibkr.KindOutcomeUnknown {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("reply question answered or declined", func(t *testing.T) {
		e := newSimEnv(t, ibkrsim.Config{Questions: ibkrsim.Questions{NoFirstOrderQuestion: true}})
		s := e.connected(ctx)
		e.fault("/iserver/account/DU1234567/orders", "reply_question", "o354", 2)
		_, err := s.PlaceOrder(ctx, "DU1234567", order("e2e-q1"), ibkr.ConfirmMessageIDs("o163"))
		if ibkr.KindOf(err) != ibkr.KindQuestionDeclined || !strings.Contains(err.Error(), "o354") {
			t.Fatalf("declined: %v", err)
		}
		placed, err := s.PlaceOrder(ctx, "DU1234567", order("e2e-q2"), ibkr.ConfirmMessageIDs("o354"))
		if err != nil || len(placed.Questions) != 1 || placed.Questions[0].MessageIDs[0] != "o354" {
			t.Fatalf("confirmed: %+v, %v", placed, err)
		}
		var got []struct {
			COID string `json:"cOID"`
		}
		if err := json.Unmarshal(e.control("GET", "/sim/orders", nil, http.StatusOK), &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].COID != "e2e-q2" {
			t.Errorf("sim orders = %+v (the declined order must not exist)", got)
		}
	})
	t.Run("suppressed question is not asked", func(t *testing.T) {
		e := newSimEnv(t, ibkrsim.Config{})
		s := e.connected(ctx)
		if err := s.SuppressQuestions(ctx, "o163"); err != nil {
			t.Fatal(err)
		}
		placed, err := s.PlaceOrder(ctx, "DU1234567", order("e2e-s1"), nil)
		if err != nil || len(placed.Questions) != 0 {
			t.Fatalf("placed = %+v, %v", placed, err)
		}
	})
}
