package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/risk"
)

// sensitiveCase is one request to a sensitive route: who sends it, and
// what it should answer once its session has stepped up.
type sensitiveCase struct {
	who    string // "admin" or "subscriber"
	method string
	path   string         // may name {user} and {token}, fixtures made before the run
	body   func() any     // built when sent: it may use earlier cases' results
	want   int            // the status with a fresh step-up
	after  func(response) // keeps what later cases need from the answer
}

// TestSensitiveRoutesNeedStepUp drives every route the authorization
// table marks sensitive (.sensitive() or .sensitiveWhen()): without a
// step-up each answers 403 step_up_required and no table changes; an API
// token is refused as forbidden; with a step-up the same request succeeds
// and changes something. A sensitive route without a case here fails the
// test, and so does an admin write, or an action issue 16 names, that is
// not marked sensitive.
func TestSensitiveRoutesNeedStepUp(t *testing.T) {
	t.Parallel()
	env := newContractEnv(t)
	ctx := context.Background()
	sub := env.newAccount(auth.Subscriber, true)
	adm := env.newAccount(auth.Admin, true)
	victim := env.newAccount(auth.Subscriber, true)
	_, oldToken, err := env.svc.CreateToken(ctx, adm.user.ID, "old feed", []string{auth.ScopeSignalsWrite}, "")
	if err != nil {
		t.Fatal(err)
	}
	env.secret(oldToken)
	tokens, err := env.svc.ListTokens(ctx)
	if err != nil || len(tokens) != 1 {
		t.Fatalf("list tokens: %v %v", tokens, err)
	}
	callers := map[string]*client{"subscriber": env.signIn(sub), "admin": env.signIn(adm)}
	token := env.program(oldToken)
	paper, live := env.register("DU1234567"), env.register("U7654321")
	vars := map[string]string{"user": victim.user.ID, "token": tokens[0].ID}

	cases := []sensitiveCase{
		{who: "subscriber", method: http.MethodPut, path: "/api/v1/broker/paper", body: func() any { return paper }, want: 200},
		{who: "subscriber", method: http.MethodPut, path: "/api/v1/broker/live", body: func() any { return live }, want: 200},
		{who: "subscriber", method: http.MethodPut, path: "/api/v1/broker/active", body: func() any { return map[string]string{"mode": "live"} }, want: 200},
		{who: "subscriber", method: http.MethodDelete, path: "/api/v1/broker/paper", want: 204},
		{who: "subscriber", method: http.MethodPut, path: "/api/v1/settings/position-size", body: func() any { return map[string]string{"mode": "shares", "value": "50"} }, want: 200},
		{who: "subscriber", method: http.MethodPost, path: "/api/v1/me/recovery-codes", want: 200},
		{who: "subscriber", method: http.MethodPost, path: "/api/v1/me/password", body: func() any {
			return map[string]string{"current_password": sub.password, "new_password": env.secret("a new password for the walk")}
		}, want: 204},
		{who: "admin", method: http.MethodPost, path: "/api/v1/admin/users", body: func() any {
			return map[string]string{"email": "made-by-admin@example.com", "role": "subscriber", "password": env.secret("a long enough password")}
		}, want: 201},
		{who: "admin", method: http.MethodPatch, path: "/api/v1/admin/users/{user}", body: func() any { return map[string]bool{"disabled": true} }, want: 200},
		{who: "admin", method: http.MethodPost, path: "/api/v1/admin/users/{user}/totp/reset", want: 200},
		{who: "admin", method: http.MethodPost, path: "/api/v1/admin/tokens", body: func() any {
			return map[string]any{"name": "feed", "scopes": []string{"signals:write"}}
		}, want: 201},
		{who: "subscriber", method: http.MethodPut, path: "/api/v1/settings/risk", body: func() any { return map[string]string{"max_order_value": "60000"} }, want: 200},
		{who: "subscriber", method: http.MethodPost, path: "/api/v1/webhooks", body: func() any {
			return map[string]any{"url": "https://hooks.example.com/ordertune", "event_types": []string{"order.filled"}}
		}, want: 201},
		{who: "admin", method: http.MethodPut, path: "/api/v1/admin/risk", body: func() any {
			return map[string]any{"halted": map[string]bool{"live": true}, "halt_reason": "step-up walk"}
		}, want: 200},
		{who: "admin", method: http.MethodPut, path: "/api/v1/admin/users/{user}/reply-questions", body: func() any { return map[string]any{"allowed": []string{}} }, want: 200},
		{who: "admin", method: http.MethodDelete, path: "/api/v1/admin/users/{user}/reply-questions", want: 200},
		{who: "admin", method: http.MethodDelete, path: "/api/v1/admin/tokens/{token}", want: 204},
	}
	// A limit of the subscriber's own, for the case above to raise.
	lim := "50000"
	if _, err := env.srv.risk.SetSettings(ctx, sub.user.ID, risk.UserUpdate{LimitsUpdate: risk.LimitsUpdate{
		MaxOrderValue: risk.Optional{Set: true, Value: &lim}}}, ""); err != nil {
		t.Fatal(err)
	}

	// Every sensitive route has a case; every admin write and every action
	// the issue names is sensitive.
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.method+" "+c.path] = true
	}
	mustBe := map[string]bool{
		routeKey(http.MethodPut, apiPrefix+"/broker/:mode"):           true,
		routeKey(http.MethodDelete, apiPrefix+"/broker/:mode"):        true,
		routeKey(http.MethodPut, apiPrefix+"/broker/active"):          true,
		routeKey(http.MethodPut, apiPrefix+"/settings/position-size"): true,
		routeKey(http.MethodPost, apiPrefix+"/me/password"):           true,
		routeKey(http.MethodPost, apiPrefix+"/me/recovery-codes"):     true,
		routeKey(http.MethodPost, apiPrefix+"/admin/tokens"):          true,
		routeKey(http.MethodPost, apiPrefix+"/admin/users"):           true,
		routeKey(http.MethodPatch, apiPrefix+"/admin/users/:id"):      true,
		routeKey(http.MethodDelete, apiPrefix+"/admin/tokens/:id"):    true,
		routeKey(http.MethodPut, apiPrefix+"/settings/risk"):          true,
		routeKey(http.MethodPost, apiPrefix+"/webhooks"):              true,
	}
	sensitive := 0
	for _, r := range env.srv.e.Routes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		key := routeKey(r.Method, r.Path)
		pol := env.srv.policies[key]
		adminWrite := strings.HasPrefix(r.Path, apiPrefix+"/admin/") && r.Method != http.MethodGet && r.Method != http.MethodHead
		if (mustBe[key] || adminWrite) && !pol.stepUp && !pol.stepUpWhen {
			t.Errorf("%s is not marked sensitive in routePolicies (authz_table.go)", key)
		}
		if !pol.stepUp && !pol.stepUpWhen {
			continue
		}
		sensitive++
		found := slices.ContainsFunc(cases, func(c sensitiveCase) bool {
			return c.method == r.Method && pathParam.ReplaceAllString(r.Path, "x") == pathParam.ReplaceAllString(strings.NewReplacer("/paper", "/:mode", "/live", "/:mode", "{user}", ":id", "{token}", ":id").Replace(c.path), "x")
		})
		if !found {
			t.Errorf("sensitive route %s has no case in TestSensitiveRoutesNeedStepUp", key)
		}
	}
	if sensitive < len(mustBe) {
		t.Fatalf("only %d sensitive routes in the table", sensitive)
	}

	for _, c := range cases {
		name := c.method + " " + c.path
		path := c.path
		for k, v := range vars {
			path = strings.ReplaceAll(path, "{"+k+"}", v)
		}
		var body any
		if c.body != nil {
			body = c.body()
		}
		cl := callers[c.who]
		env.endStepUp(cl)
		before := env.snapshot()
		r := cl.do(c.method, path, body)
		if r.status != http.StatusForbidden || r.problem(t).Code != "step_up_required" {
			t.Errorf("%s without step-up: %d %s, want 403 step_up_required", name, r.status, r.body)
		}
		r = token.do(c.method, path, body)
		if r.status != http.StatusForbidden || r.problem(t).Code != "forbidden" {
			t.Errorf("%s with an API token: %d %s, want 403 forbidden", name, r.status, r.body)
		}
		if after := env.snapshot(); after != before {
			t.Errorf("%s refused, yet tables changed: %s", name, diffTables(before, after))
		}
		cl.stepUp()
		r = cl.do(c.method, path, body)
		if r.status != c.want {
			t.Errorf("%s after step-up: %d %s, want %d", name, r.status, r.body, c.want)
		}
		if after := env.snapshot(); after == before {
			t.Errorf("%s after step-up changed nothing; the case proves nothing", name)
		}
	}

	// The conditional routes' other kind needs no step-up: lowering the
	// position size, turning it off, switching back to paper.
	cl := callers["subscriber"]
	env.endStepUp(cl)
	for _, tt := range []struct {
		path string
		body any
	}{
		{"/api/v1/settings/position-size", map[string]string{"mode": "shares", "value": "49"}},
		{"/api/v1/settings/position-size", map[string]string{"mode": "off"}},
		{"/api/v1/broker/active", map[string]string{"mode": "paper"}},
		{"/api/v1/settings/risk", map[string]string{"max_order_value": "100"}},
		{"/api/v1/settings/risk", map[string]any{"trading_paused": true}},
	} {
		if r := cl.do(http.MethodPut, tt.path, tt.body); r.status != http.StatusOK && !(tt.path == "/api/v1/broker/active" && r.status == http.StatusNotFound) {
			t.Errorf("PUT %s %v without step-up: %d %s, want 200", tt.path, tt.body, r.status, r.body)
		}
	}
	// And turning it back on from off is a raise, as are resuming trading
	// and removing a limit.
	for _, tt := range []struct {
		path string
		body any
	}{
		{"/api/v1/settings/position-size", map[string]string{"mode": "shares", "value": "1"}},
		{"/api/v1/settings/risk", map[string]any{"trading_paused": false}},
		{"/api/v1/settings/risk", map[string]any{"max_order_value": nil}},
	} {
		if r := cl.do(http.MethodPut, tt.path, tt.body); r.status != http.StatusForbidden || r.problem(t).Code != "step_up_required" {
			t.Errorf("PUT %s %v without step-up: %d %s, want 403 step_up_required", tt.path, tt.body, r.status, r.body)
		}
	}
}

// endStepUp ends the step-up of c's session, if any.
func (env *brokerEnv) endStepUp(c *client) {
	env.t.Helper()
	if _, err := env.srv.pool.Exec(context.Background(), `UPDATE sessions SET step_up_until = NULL WHERE id_hash = sha256($1::text::bytea)`, c.session); err != nil {
		env.t.Fatal(err)
	}
	if r := c.do(http.MethodGet, "/api/v1/me", nil); !strings.Contains(string(r.body), `"step_up_until":null`) {
		env.t.Fatalf("step-up still in force: %s", r.body)
	}
}

// snapshot fingerprints every table but sessions (whose last-seen times
// move with each request) and the tokens' last use: a refused request
// must leave all of them as they were.
func (env *brokerEnv) snapshot() string {
	env.t.Helper()
	ctx := context.Background()
	rows, err := env.srv.pool.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> 'sessions' ORDER BY table_name`)
	if err != nil {
		env.t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		env.t.Fatal(err)
	}
	// Columns that record use, not change, are left out.
	rowText := map[string]string{"api_tokens": "(t.id, t.token_hash, t.name, t.scopes, t.created_by, t.revoked_at)::text"}
	var b strings.Builder
	for _, n := range tables {
		row, ok := rowText[n]
		if !ok {
			row = "t::text"
		}
		var sum string
		q := fmt.Sprintf(`SELECT coalesce(md5(string_agg(%s, '|' ORDER BY %s)), '') FROM %q t`, row, row, n)
		if err := env.srv.pool.QueryRow(ctx, q).Scan(&sum); err != nil {
			env.t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s=%s\n", n, sum)
	}
	return b.String()
}

// diffTables names the tables whose fingerprints differ.
func diffTables(before, after string) string {
	a, b := strings.Split(before, "\n"), strings.Split(after, "\n")
	var out []string
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			out = append(out, strings.SplitN(a[i], "=", 2)[0])
		}
	}
	return strings.Join(out, ", ")
}

// TestStepUpOverHTTP: /me shows no step-up after signing in; the sign-in
// code cannot step up; the next code can, and /me then shows until when.
func TestStepUpOverHTTP(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t)
	a := env.newAccount(auth.Subscriber, true)
	signInCode := env.code(a.secret)
	c := env.passwordOnly(a)
	if r := c.do(http.MethodPost, "/api/v1/auth/totp", map[string]string{"code": signInCode}); r.status != 200 {
		t.Fatalf("2FA: %d %s", r.status, r.body)
	}
	me := func() map[string]any {
		t.Helper()
		var m map[string]any
		c.do(http.MethodGet, "/api/v1/me", nil).json(t, &m)
		return m
	}
	if v, ok := me()["step_up_until"]; !ok || v != nil {
		t.Errorf("step_up_until after signing in = %v (present %v), want null", v, ok)
	}
	r := c.do(http.MethodPost, "/api/v1/auth/step-up", map[string]string{"code": signInCode})
	if r.status != 422 || r.problem(t).Errors[0].Field != "code" {
		t.Errorf("step-up with the sign-in code: %d %s, want 422 at code", r.status, r.body)
	}
	c.stepUp()
	want := env.clock.Now().Add(auth.StepUpWindow).UTC().Format(time.RFC3339)
	if got := me()["step_up_until"]; got != want {
		t.Errorf("step_up_until = %v, want %s", got, want)
	}
	env.clock.Advance(auth.StepUpWindow)
	if v := me()["step_up_until"]; v != nil {
		t.Errorf("step_up_until after the window = %v, want null", v)
	}
}
