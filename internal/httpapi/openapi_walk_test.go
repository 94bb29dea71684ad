package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/broker"
)

// newContractEnv is the whole product behind real HTTP: accounts with 2FA,
// the broker service talking to a simulator over HTTP, and trading placing
// orders through that broker service (as `ordertune serve` wires it).
func newContractEnv(t *testing.T) *brokerEnv {
	t.Helper()
	return newBrokerEnvWith(t, brokerEnvOptions{
		logLevel:  zerolog.DebugLevel,
		questions: broker.DefaultAllowedQuestions(),
		trading:   true,
	})
}

// contractStep is one request of TestResponsesMatchSpec. Path and body may
// name values of earlier answers as {name}; save keeps fields of this
// answer's JSON under names.
type contractStep struct {
	name   string
	who    string // a caller of the test
	method string
	path   string
	body   any
	header []string // extra request headers, name and value
	want   []int    // any of these statuses
	save   map[string]string
	before func() // runs before the request (moves the clock, computes a code)
}

// TestResponsesMatchSpec drives the product end to end over HTTP (2FA
// sign-in and enrolment, broker connection against the simulator, a signal
// confirmed into a simulated order, the admin's lists, refusals) and
// validates every answer against api/openapi.yaml. It then fails for any
// documented operation no step reached, so a new route needs a step here.
func TestResponsesMatchSpec(t *testing.T) {
	t.Parallel()
	env := newContractEnv(t)
	v := newSpecValidator(t, env.srv)
	sub := env.newAccount(auth.Subscriber, true)
	adm := env.newAccount(auth.Admin, true)
	fresh := env.newAccount(auth.Subscriber, false)
	creds := env.register("DU1234567")
	badCreds := map[string]string{}
	for k, val := range creds {
		badCreds[k] = val
	}
	badCreds["consumer_key"], badCreds["dh_params"] = "lower", "00"

	callers := map[string]*client{
		"nobody":     env.browser(),
		"subscriber": env.browser(), // signs in through the steps below
		"enrolling":  env.browser(),
		"admin":      env.signIn(adm),
	}
	vars := map[string]string{"sub_code": env.code(sub.secret), "missing": newTestUUID()}

	steps := []contractStep{
		// Operations and the UI.
		{name: "health", who: "nobody", method: "GET", path: "/healthz", want: []int{200}},
		{name: "ready", who: "nobody", method: "GET", path: "/readyz", want: []int{200}},
		{name: "metrics", who: "nobody", method: "GET", path: "/metrics", want: []int{200}},
		{name: "spec", who: "nobody", method: "GET", path: "/api/openapi.yaml", want: []int{200}},
		{name: "asset", who: "nobody", method: "GET", path: "/assets/js/main.js", want: []int{200}},
		{name: "missing asset", who: "nobody", method: "GET", path: "/assets/js/nope.js", want: []int{404}},
		{name: "unknown route", who: "nobody", method: "GET", path: "/api/v1/nope", want: []int{404}},

		// Sign-in with 2FA, and refusals on the way.
		{name: "signup offered", who: "nobody", method: "GET", path: "/api/v1/auth/signup", want: []int{200}},
		{name: "signup closed", who: "nobody", method: "POST", path: "/api/v1/auth/signup", body: map[string]string{"email": "x@example.com", "password": "correct horse battery"}, want: []int{403}},
		{name: "anonymous me", who: "nobody", method: "GET", path: "/api/v1/me", want: []int{401}},
		{name: "forgot password", who: "nobody", method: "POST", path: "/api/v1/auth/password-reset", body: map[string]string{"email": "x@example.com"}, want: []int{202}},
		{name: "reset with a wrong link", who: "nobody", method: "POST", path: "/api/v1/auth/password-reset/complete", body: map[string]string{"token": "not-a-token", "new_password": "correct horse battery"}, want: []int{422}},
		{name: "wrong password", who: "nobody", method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": sub.user.Email, "password": "wrong password"}, want: []int{401}},
		{name: "login", who: "subscriber", method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": sub.user.Email, "password": sub.password}, want: []int{200}},
		{name: "me before 2FA", who: "subscriber", method: "GET", path: "/api/v1/me", want: []int{200}},
		{name: "signals before 2FA", who: "subscriber", method: "GET", path: "/api/v1/signals", want: []int{403}},
		{name: "2FA", who: "subscriber", method: "POST", path: "/api/v1/auth/totp", body: map[string]string{"code": "{sub_code}"}, want: []int{200}},
		{name: "me", who: "subscriber", method: "GET", path: "/api/v1/me", want: []int{200}},
		{name: "wrong method", who: "subscriber", method: "DELETE", path: "/api/v1/me", want: []int{405}},

		// Enrolment.
		{name: "login to enrol", who: "enrolling", method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": fresh.user.Email, "password": fresh.password}, want: []int{200}},
		{name: "totp setup", who: "enrolling", method: "POST", path: "/api/v1/me/totp/setup", want: []int{200}, save: map[string]string{"enrol_secret": "secret"}},
		{name: "totp enable", who: "enrolling", method: "POST", path: "/api/v1/me/totp/enable", body: map[string]string{"code": "{enrol_code}"}, want: []int{200}},

		// Settings → Broker against the simulator.
		{name: "broker empty", who: "subscriber", method: "GET", path: "/api/v1/broker", want: []int{200}},
		{name: "broker save before step-up", who: "subscriber", method: "PUT", path: "/api/v1/broker/paper", body: creds, want: []int{403}},
		{name: "step-up wrong code", who: "subscriber", method: "POST", path: "/api/v1/auth/step-up", body: map[string]string{"code": "{sub_code}"}, want: []int{422}},
		{name: "subscriber step-up", who: "subscriber", method: "POST", path: "/api/v1/auth/step-up", body: map[string]string{"code": "{subscriber_stepup_code}"}, want: []int{200},
			before: func() { env.clock.Advance(30 * time.Second); vars["subscriber_stepup_code"] = env.code(sub.secret) }},
		{name: "me stepped up", who: "subscriber", method: "GET", path: "/api/v1/me", want: []int{200}},
		{name: "broker invalid", who: "subscriber", method: "PUT", path: "/api/v1/broker/paper", body: badCreds, want: []int{422}},
		{name: "broker bad mode", who: "subscriber", method: "PUT", path: "/api/v1/broker/sideways", body: creds, want: []int{400}},
		{name: "broker save", who: "subscriber", method: "PUT", path: "/api/v1/broker/paper", body: creds, want: []int{200}},
		{name: "broker test saved", who: "subscriber", method: "POST", path: "/api/v1/broker/paper/test", want: []int{200}},
		{name: "broker test unsaved", who: "subscriber", method: "POST", path: "/api/v1/broker/live/test", body: creds, want: []int{200}},
		{name: "broker active", who: "subscriber", method: "PUT", path: "/api/v1/broker/active", body: map[string]string{"mode": "paper"}, want: []int{200}},
		{name: "session preference", who: "subscriber", method: "PUT", path: "/api/v1/broker/session-preference", body: map[string]string{"on_competing": "wait"}, want: []int{200}},
		{name: "session preference invalid", who: "subscriber", method: "PUT", path: "/api/v1/broker/session-preference", body: map[string]string{"on_competing": "later"}, want: []int{422}},
		{name: "broker live none", who: "subscriber", method: "DELETE", path: "/api/v1/broker/live", want: []int{404}},
		{name: "broker", who: "subscriber", method: "GET", path: "/api/v1/broker", want: []int{200}},

		// Trading settings.
		{name: "settings", who: "subscriber", method: "GET", path: "/api/v1/settings", want: []int{200}},
		{name: "position size invalid", who: "subscriber", method: "PUT", path: "/api/v1/settings/position-size", body: map[string]any{"mode": "shares", "value": "-3"}, want: []int{422}},
		{name: "position size", who: "subscriber", method: "PUT", path: "/api/v1/settings/position-size", body: map[string]any{"mode": "shares", "value": "5"}, want: []int{200}},
		{name: "risk settings", who: "subscriber", method: "GET", path: "/api/v1/settings/risk", want: []int{200}},
		{name: "risk above ceiling", who: "subscriber", method: "PUT", path: "/api/v1/settings/risk", body: map[string]any{"max_order_value": "99999999"}, want: []int{422}},
		{name: "risk limits", who: "subscriber", method: "PUT", path: "/api/v1/settings/risk", body: map[string]any{"max_order_value": "5000", "max_shares_per_order": 100}, want: []int{200}},

		// Notifications, their preferences and webhook endpoints.
		{name: "notifications", who: "subscriber", method: "GET", path: "/api/v1/notifications?unread=true", want: []int{200}},
		{name: "notifications bad filter", who: "subscriber", method: "GET", path: "/api/v1/notifications?unread=maybe", want: []int{422}},
		{name: "read missing", who: "subscriber", method: "POST", path: "/api/v1/notifications/{missing}/read", want: []int{404}},
		{name: "read all", who: "subscriber", method: "POST", path: "/api/v1/notifications/read-all", want: []int{204}},
		{name: "notification settings", who: "subscriber", method: "GET", path: "/api/v1/settings/notifications", want: []int{200}},
		{name: "notification settings change", who: "subscriber", method: "PUT", path: "/api/v1/settings/notifications", body: map[string]any{"email": map[string]bool{"order.filled": false}}, want: []int{200}},
		{name: "notification settings invalid", who: "subscriber", method: "PUT", path: "/api/v1/settings/notifications", body: map[string]any{"email": map[string]bool{"order.nope": false}}, want: []int{422}},
		{name: "webhooks", who: "subscriber", method: "GET", path: "/api/v1/webhooks", want: []int{200}},
		{name: "webhook invalid", who: "subscriber", method: "POST", path: "/api/v1/webhooks", body: map[string]any{"url": "ftp://x", "event_types": []string{}}, want: []int{422}},
		{name: "webhook", who: "subscriber", method: "POST", path: "/api/v1/webhooks", body: map[string]any{"url": "http://127.0.0.1:9/hook", "event_types": []string{"order.filled", "order.failed"}}, want: []int{201}, save: map[string]string{"webhook": "id"}},
		{name: "webhooks with one", who: "subscriber", method: "GET", path: "/api/v1/webhooks", want: []int{200}},
		{name: "webhook test", who: "subscriber", method: "POST", path: "/api/v1/webhooks/{webhook}/test", want: []int{202}},
		{name: "webhook deliveries", who: "subscriber", method: "GET", path: "/api/v1/webhooks/{webhook}/deliveries", want: []int{200}},
		{name: "webhook of another", who: "admin", method: "DELETE", path: "/api/v1/webhooks/{webhook}", want: []int{404}},
		{name: "webhook delete", who: "subscriber", method: "DELETE", path: "/api/v1/webhooks/{webhook}", want: []int{204}},
		// The exchange's clock.
		{name: "market clock", who: "subscriber", method: "GET", path: "/api/v1/market/clock", want: []int{200}},
		{name: "market clock anonymous", who: "nobody", method: "GET", path: "/api/v1/market/clock", want: []int{401}},

		// Signals, preview, confirm.
		{name: "publish as subscriber", who: "subscriber", method: "POST", path: "/api/v1/signals", body: newSignalBody(nil), want: []int{403}},
		{name: "publish invalid", who: "admin", method: "POST", path: "/api/v1/signals", body: newSignalBody(func(m map[string]any) { m["ticker"] = "lower case" }), want: []int{422}},
		{name: "publish", who: "admin", method: "POST", path: "/api/v1/signals", body: newSignalBody(nil), want: []int{201}, save: map[string]string{"signal": "id"}},
		{name: "signals", who: "subscriber", method: "GET", path: "/api/v1/signals?status=all&limit=10", want: []int{200}},
		{name: "signals bad limit", who: "subscriber", method: "GET", path: "/api/v1/signals?limit=many", want: []int{422}},
		{name: "signal", who: "subscriber", method: "GET", path: "/api/v1/signals/{signal}", want: []int{200}},
		{name: "signal missing", who: "subscriber", method: "GET", path: "/api/v1/signals/{missing}", want: []int{404}},
		{name: "preview", who: "subscriber", method: "GET", path: "/api/v1/signals/{signal}/preview", want: []int{200}},
		{name: "confirm without key", who: "subscriber", method: "POST", path: "/api/v1/signals/{signal}/confirm", body: map[string]string{"side": "BUY"}, want: []int{400}},
		{name: "confirm", who: "subscriber", method: "POST", path: "/api/v1/signals/{signal}/confirm", body: map[string]string{"side": "BUY"}, header: []string{"Idempotency-Key", "contract-1"}, want: []int{201, 202}, save: map[string]string{"confirmation": "id"}},
		{name: "confirm again", who: "subscriber", method: "POST", path: "/api/v1/signals/{signal}/confirm", body: map[string]string{"side": "BUY"}, header: []string{"Idempotency-Key", "contract-1"}, want: []int{200, 202}},
		{name: "confirm key reused", who: "subscriber", method: "POST", path: "/api/v1/signals/{signal}/confirm", body: map[string]string{"side": "SELL"}, header: []string{"Idempotency-Key", "contract-1"}, want: []int{422}},
		{name: "signals with mine", who: "subscriber", method: "GET", path: "/api/v1/signals", want: []int{200}},

		// Risk: a limit refuses a confirm, a pause refuses an entry, an
		// admin halts and resumes a mode and suspends a user.
		{name: "publish second", who: "admin", method: "POST", path: "/api/v1/signals", body: newSignalBody(nil), want: []int{201}, save: map[string]string{"signal2": "id"}},
		{name: "risk lower", who: "subscriber", method: "PUT", path: "/api/v1/settings/risk", body: map[string]any{"max_shares_per_order": "1"}, want: []int{200}},
		{name: "preview over limit", who: "subscriber", method: "GET", path: "/api/v1/signals/{signal2}/preview", want: []int{200}},
		{name: "confirm over limit", who: "subscriber", method: "POST", path: "/api/v1/signals/{signal2}/confirm", body: map[string]string{"side": "BUY"}, header: []string{"Idempotency-Key", "contract-2"}, want: []int{422}},
		{name: "pause", who: "subscriber", method: "PUT", path: "/api/v1/settings/risk", body: map[string]any{"trading_paused": true}, want: []int{200}},
		{name: "confirm while paused", who: "subscriber", method: "POST", path: "/api/v1/signals/{signal2}/confirm", body: map[string]string{"side": "BUY"}, header: []string{"Idempotency-Key", "contract-3"}, want: []int{409}},

		// The IBKR pass-through with the subscriber's own session.
		{name: "ibkr summary", who: "subscriber", method: "GET", path: "/api/v1/ibkr/portfolio/me/summary", want: []int{200}},
		{name: "ibkr off the list", who: "subscriber", method: "GET", path: "/api/v1/ibkr/iserver/accounts", want: []int{403}},
		{name: "ibkr stream without upgrade", who: "subscriber", method: "GET", path: "/api/v1/ibkr/ws", want: []int{426}},

		// Positions, trades and P&L (the ledger).
		{name: "positions", who: "subscriber", method: "GET", path: "/api/v1/positions", want: []int{200}},
		{name: "positions of the other mode", who: "subscriber", method: "GET", path: "/api/v1/positions?mode=live", want: []int{409}},
		{name: "positions bad mode", who: "subscriber", method: "GET", path: "/api/v1/positions?mode=demo", want: []int{422}},
		{name: "trades import", who: "subscriber", method: "POST", path: "/api/v1/trades/import", want: []int{200}},
		{name: "trades", who: "subscriber", method: "GET", path: "/api/v1/trades?ticker=AAPL&from=2026-01-01&limit=10", want: []int{200}},
		{name: "trades csv", who: "subscriber", method: "GET", path: "/api/v1/trades?format=csv", want: []int{200}},
		{name: "trades bad cursor", who: "subscriber", method: "GET", path: "/api/v1/trades?cursor=nope", want: []int{422}},
		{name: "pnl", who: "subscriber", method: "GET", path: "/api/v1/pnl?group=strategy&from=2026-01-01&to=2026-12-31", want: []int{200}},
		{name: "pnl bad group", who: "subscriber", method: "GET", path: "/api/v1/pnl?group=week", want: []int{422}},
		{name: "pnl anonymous", who: "nobody", method: "GET", path: "/api/v1/pnl", want: []int{401}},

		// Confirmations.
		{name: "confirmations", who: "subscriber", method: "GET", path: "/api/v1/confirmations?status=submitted", want: []int{200}},
		{name: "confirmation", who: "subscriber", method: "GET", path: "/api/v1/confirmations/{confirmation}", want: []int{200}},
		{name: "confirmation of another", who: "admin", method: "GET", path: "/api/v1/confirmations/{confirmation}", want: []int{404}},
		{name: "cancel", who: "subscriber", method: "POST", path: "/api/v1/confirmations/{confirmation}/cancel", want: []int{202}},
		{name: "cancel missing", who: "subscriber", method: "POST", path: "/api/v1/confirmations/{missing}/cancel", want: []int{404}},

		// Admin.
		{name: "users as subscriber", who: "subscriber", method: "GET", path: "/api/v1/admin/users", want: []int{403}},
		{name: "users", who: "admin", method: "GET", path: "/api/v1/admin/users?limit=2", want: []int{200}},
		{name: "admin step-up", who: "admin", method: "POST", path: "/api/v1/auth/step-up", body: map[string]string{"code": "{admin_stepup_code}"}, want: []int{200},
			before: func() { env.clock.Advance(30 * time.Second); vars["admin_stepup_code"] = env.code(adm.secret) }},
		{name: "create user", who: "admin", method: "POST", path: "/api/v1/admin/users", body: map[string]string{"email": "new-" + newTestUUID()[:8] + "@example.com", "role": "subscriber", "password": "a long enough password"}, want: []int{201}, save: map[string]string{"user": "id"}},
		{name: "create user invalid", who: "admin", method: "POST", path: "/api/v1/admin/users", body: map[string]string{"email": "nobody", "role": "king", "password": "x"}, want: []int{422}},
		{name: "reply questions", who: "admin", method: "GET", path: "/api/v1/admin/users/{user}/reply-questions", want: []int{200}},
		{name: "reply questions of nobody", who: "admin", method: "GET", path: "/api/v1/admin/users/6f1c1e9a-3b7d-4c1e-9a55-0d4f1e2a3b4c/reply-questions", want: []int{404}},
		{name: "surface every question", who: "admin", method: "PUT", path: "/api/v1/admin/users/{user}/reply-questions", body: map[string]any{"allowed": []string{}}, want: []int{200}},
		{name: "own reply questions invalid", who: "admin", method: "PUT", path: "/api/v1/admin/users/{user}/reply-questions", body: map[string]any{"allowed": []string{"yes"}}, want: []int{422}},
		{name: "reply questions default", who: "admin", method: "DELETE", path: "/api/v1/admin/users/{user}/reply-questions", want: []int{200}},
		{name: "disable user", who: "admin", method: "PATCH", path: "/api/v1/admin/users/{user}", body: map[string]bool{"disabled": true}, want: []int{200}},
		{name: "suspend user", who: "admin", method: "PATCH", path: "/api/v1/admin/users/{user}", body: map[string]any{"suspended": true, "reason": "review"}, want: []int{200}},
		{name: "suspend without reason", who: "admin", method: "PATCH", path: "/api/v1/admin/users/{user}", body: map[string]any{"suspended": true}, want: []int{422}},
		{name: "reset 2fa", who: "admin", method: "POST", path: "/api/v1/admin/users/{user}/totp/reset", want: []int{200}},
		{name: "reset 2fa missing", who: "admin", method: "POST", path: "/api/v1/admin/users/{missing}/totp/reset", want: []int{404}},
		{name: "platform risk as subscriber", who: "subscriber", method: "GET", path: "/api/v1/admin/risk", want: []int{403}},
		{name: "platform risk", who: "admin", method: "GET", path: "/api/v1/admin/risk", want: []int{200}},
		{name: "halt without reason", who: "admin", method: "PUT", path: "/api/v1/admin/risk", body: map[string]any{"halted": map[string]bool{"live": true}, "halt_reason": ""}, want: []int{422}},
		{name: "halt", who: "admin", method: "PUT", path: "/api/v1/admin/risk", body: map[string]any{"halted": map[string]bool{"paper": true}, "halt_reason": "contract test", "max_orders_per_day": "40"}, want: []int{200}},
		{name: "resume", who: "admin", method: "PUT", path: "/api/v1/admin/risk", body: map[string]any{"halted": map[string]bool{"paper": false}, "max_orders_per_day": nil}, want: []int{200}},
		{name: "tokens", who: "admin", method: "GET", path: "/api/v1/admin/tokens", want: []int{200}},
		{name: "create token", who: "admin", method: "POST", path: "/api/v1/admin/tokens", body: map[string]any{"name": "feed", "scopes": []string{"signals:write"}}, want: []int{201}, save: map[string]string{"token": "id"}},
		{name: "tokens with one", who: "admin", method: "GET", path: "/api/v1/admin/tokens", want: []int{200}},
		{name: "revoke token", who: "admin", method: "DELETE", path: "/api/v1/admin/tokens/{token}", want: []int{204}},
		{name: "sessions", who: "admin", method: "GET", path: "/api/v1/admin/sessions", want: []int{200}},
		{name: "log", who: "admin", method: "GET", path: "/api/v1/admin/confirmations?ticker=AAPL", want: []int{200}},
		{name: "log csv", who: "admin", method: "GET", path: "/api/v1/admin/confirmations?format=csv", want: []int{200}},
		{name: "log entry", who: "admin", method: "GET", path: "/api/v1/admin/confirmations/{confirmation}", want: []int{200}},
		{name: "log entry as subscriber", who: "subscriber", method: "GET", path: "/api/v1/admin/confirmations/{confirmation}", want: []int{403}},
		{name: "log entry missing", who: "admin", method: "GET", path: "/api/v1/admin/confirmations/{missing}", want: []int{404}},
		{name: "log bad date", who: "admin", method: "GET", path: "/api/v1/admin/confirmations?from=yesterday", want: []int{422}},
		{name: "audit", who: "admin", method: "GET", path: "/api/v1/admin/audit?limit=50", want: []int{200}},
		{name: "audit verify", who: "admin", method: "GET", path: "/api/v1/admin/audit/verify", want: []int{200}},
		{name: "withdraw", who: "admin", method: "DELETE", path: "/api/v1/signals/{signal}", want: []int{204}},

		// The account's own settings, then sign out.
		{name: "subscriber step-up again", who: "subscriber", method: "POST", path: "/api/v1/auth/step-up", body: map[string]string{"code": "{subscriber_stepup_code}"}, want: []int{200},
			before: func() { env.clock.Advance(30 * time.Second); vars["subscriber_stepup_code"] = env.code(sub.secret) }},
		{name: "recovery codes", who: "subscriber", method: "POST", path: "/api/v1/me/recovery-codes", want: []int{200}},
		{name: "password too short", who: "subscriber", method: "POST", path: "/api/v1/me/password", body: map[string]string{"current_password": sub.password, "new_password": "x"}, want: []int{422}},
		{name: "password", who: "subscriber", method: "POST", path: "/api/v1/me/password", body: map[string]string{"current_password": sub.password, "new_password": env.secret("another long password " + newTestUUID())}, want: []int{204}},
		{name: "logout", who: "subscriber", method: "POST", path: "/api/v1/auth/logout", want: []int{204}},
		{name: "after logout", who: "subscriber", method: "GET", path: "/api/v1/settings", want: []int{401}},
	}
	for _, p := range WebPagePaths() {
		steps = append(steps, contractStep{name: "page " + p, who: "nobody", method: "GET", path: strings.ReplaceAll(p, ":id", "{missing}"), want: []int{200}})
	}

	fill := func(s string) string {
		for k, val := range vars {
			s = strings.ReplaceAll(s, "{"+k+"}", val)
		}
		return s
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		var body any
		if st.body != nil {
			b, err := json.Marshal(st.body)
			if err != nil {
				t.Fatal(err)
			}
			body = fill(string(b))
		}
		r := v.do(t, callers[st.who], st.method, fill(st.path), body, st.header...)
		if !slices.Contains(st.want, r.status) {
			t.Fatalf("%s: %s %s = %d, want one of %v\nbody: %.600s", st.name, st.method, st.path, r.status, st.want, r.body)
		}
		for name, field := range st.save {
			var m map[string]any
			r.json(t, &m)
			s, ok := m[field].(string)
			if !ok || s == "" {
				t.Fatalf("%s: no %q in %s", st.name, field, r.body)
			}
			vars[name] = s
		}
		if st.name == "totp setup" {
			vars["enrol_code"] = env.code(vars["enrol_secret"])
		}
	}

	// The spec document answers 304 to a current copy.
	spec := v.do(t, callers["nobody"], "GET", "/api/openapi.yaml", nil)
	if r := v.do(t, callers["nobody"], "GET", "/api/openapi.yaml", nil, "If-None-Match", spec.header.Get("ETag")); r.status != http.StatusNotModified {
		t.Errorf("GET /api/openapi.yaml with its ETag = %d, want 304", r.status)
	}

	// The IBKR stream: the upgrade answer, validated like any other.
	admin := callers["admin"]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if r := admin.do("PUT", "/api/v1/broker/paper", env.register("DU7654321")); r.status != http.StatusOK {
		t.Fatalf("admin's connection: %d %s", r.status, r.body)
	}
	ws, res, err := websocket.Dial(ctx, strings.Replace(env.ts.URL, "http://", "ws://", 1)+"/api/v1/ibkr/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Cookie": {env.srv.sessionCookieName() + "=" + admin.session}}})
	if err != nil {
		t.Fatalf("dial the IBKR stream: %v", err)
	}
	ws.CloseNow()
	if err := v.validate("GET", "/api/v1/ibkr/ws", res.StatusCode, res.Header, nil); err != nil {
		t.Errorf("GET /api/v1/ibkr/ws → %d breaks api/openapi.yaml: %v", res.StatusCode, err)
	}

	for _, op := range v.unseen() {
		t.Errorf("no response of %s was validated; add a step to TestResponsesMatchSpec", op)
	}
}
