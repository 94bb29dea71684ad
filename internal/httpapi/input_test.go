package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/trading"
)

func TestDecodeStrict(t *testing.T) {
	type side struct {
		Side string `json:"side"`
	}
	tests := []struct {
		name  string
		body  string
		into  any
		field string // the field a 422 names; "" for a 400 or success
		fail  bool
	}{
		{name: "ok", body: `{"side":"BUY"}`, into: &side{}},
		{name: "key in another case", body: `{"SIDE":"BUY"}`, into: &side{}, field: "SIDE", fail: true},
		{name: "duplicate key", body: `{"side":"BUY","side":"SELL"}`, into: &side{}, field: "side", fail: true},
		{name: "duplicate in two cases", body: `{"side":"BUY","Side":"SELL"}`, into: &side{}, field: "Side", fail: true},
		{name: "unknown", body: `{"side":"BUY","x":1}`, into: &side{}, field: "x", fail: true},
		{name: "NUL", body: `{"side":"B\u0000"}`, into: &side{}, field: "side", fail: true},
		{name: "escape", body: `{"side":"\u001b[31m"}`, into: &side{}, field: "side", fail: true},
		{name: "C1", body: `{"side":"\u0085"}`, into: &side{}, field: "side", fail: true},
		{name: "line separator", body: `{"side":"a\u2028b"}`, into: &side{}, field: "side", fail: true},
		{name: "paragraph separator raw", body: "{\"side\":\"a\u2029b\"}", into: &side{}, field: "side", fail: true},
		{name: "bidi override", body: "{\"side\":\"a\u202eb\"}", into: &side{}, field: "side", fail: true},
		{name: "invalid UTF-8", body: "{\"side\":\"a\xffb\"}", into: &side{}, field: "side", fail: true},
		{name: "lone surrogate", body: `{"side":"a\ud800b"}`, into: &side{}, field: "side", fail: true},
		{name: "newline in a one-line field", body: `{"side":"a\nb"}`, into: &side{}, field: "side", fail: true},
		{name: "too long", body: `{"side":"` + strings.Repeat("x", maxTextBytes+1) + `"}`, into: &side{}, field: "side", fail: true},
		{name: "newline in a PEM", body: `{"signature_key_pem":"-----BEGIN\r\nx\n\t-----END"}`, into: &broker.Input{}},
		{name: "NUL in a PEM", body: `{"signature_key_pem":"-----BEGIN\u0000"}`, into: &broker.Input{}, field: "signature_key_pem", fail: true},
		{name: "newline beside a PEM", body: `{"account_id":"U1\n"}`, into: &broker.Input{}, field: "account_id", fail: true},
		{name: "nested in a list", body: `{"name":"n","scopes":["a","b\u0000"]}`, into: &struct {
			Name   string   `json:"name"`
			Scopes []string `json:"scopes"`
		}{}, field: "scopes", fail: true},
		{name: "wrong type", body: `{"side":1}`, into: &side{}, field: "side", fail: true},
		{name: "not an object", body: `["side"]`, into: &side{}, fail: true},
		{name: "null", body: `null`, into: &side{}, fail: true},
		{name: "two objects", body: `{"side":"BUY"}{}`, into: &side{}, fail: true},
		{name: "truncated", body: `{"side":"BUY"`, into: &side{}, fail: true},
		{name: "empty", body: ` `, into: &side{}, fail: true},
		{name: "time field", body: `{"ticker":"AAPL","expires_at":"2026-11-23T14:30:00Z"}`, into: &trading.NewSignal{}},
		{name: "time field NUL", body: `{"expires_at":"2026-11-23\u0000"}`, into: &trading.NewSignal{}, field: "expires_at", fail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := decodeStrict([]byte(tt.body), tt.into)
			if (err != nil) != tt.fail {
				t.Fatalf("err = %v, want failure %v", err, tt.fail)
			}
			if err == nil {
				return
			}
			e := errs.As(err)
			if e == nil || e.Code != errs.Invalid {
				t.Fatalf("err = %v, want an invalid_argument", err)
			}
			var got string
			if len(e.Fields) > 0 {
				got = e.Fields[0].Field
			}
			if got != tt.field {
				t.Errorf("field = %q, want %q (%v)", got, tt.field, err)
			}
		})
	}
}

func TestTextProblemQuery(t *testing.T) {
	for _, q := range []string{"ticker=%00", "ticker=a%E2%80%A8", "user=%FF", "action=a%1Bb", "%00=x", "cursor=" + strings.Repeat("9", maxTextBytes+1)} {
		v, err := url.ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		if checkQuery(v) == nil {
			t.Errorf("%s passed the input-cleaning rule", q)
		}
	}
	if err := checkQuery(url.Values{"ticker": {"AAPL"}, "status": {"open"}, "user": {"ann@example.com"}}); err != nil {
		t.Errorf("a clean query was refused: %v", err)
	}
}

// TestInputCleaningOverHTTP sends the review's malformed inputs to the
// real server: each is a 422 naming the field (never PostgreSQL's 500), a
// refused login is not counted by the throttle, and the media type is
// parsed rather than compared.
func TestInputCleaningOverHTTP(t *testing.T) {
	t.Parallel()
	env := newAuthEnv(t, authEnvOptions{allFeatures: true, signupOpen: true})
	admin := env.newAccount(auth.Admin, true)
	sub := env.newAccount(auth.Subscriber, true)
	adm := env.signIn(admin)
	nobody := env.browser()
	cases := []struct {
		c      *client
		method string
		path   string
		body   string
		field  string
	}{
		{nobody, "POST", "/api/v1/auth/login", `{"email":"a\u0000@b.c","password":"x"}`, "email"},
		{nobody, "POST", "/api/v1/auth/signup", `{"email":"a\u0000@b.c","password":"long enough password"}`, "email"},
		{adm, "POST", "/api/v1/admin/users", `{"email":"a\u0000@b.c","role":"subscriber","password":"long enough password"}`, "email"},
		{adm, "POST", "/api/v1/admin/tokens", `{"name":"a\u0000","scopes":["signals:write"]}`, "name"},
		{adm, "POST", "/api/v1/signals", `{"ticker":"AAPL\u2028"}`, "ticker"},
		{adm, "GET", "/api/v1/confirmations?ticker=%00", "", "ticker"},
		{adm, "GET", "/api/v1/admin/confirmations?ticker=%00", "", "ticker"},
		{adm, "GET", "/api/v1/admin/confirmations?user=%00", "", "user"},
		{adm, "GET", "/api/v1/admin/audit?user=%00", "", "user"},
		{adm, "GET", "/api/v1/admin/audit?action=%00", "", "action"},
		{adm, "GET", "/api/v1/admin/audit?action=%FF", "", "action"},
		{adm, "GET", "/api/v1/signals?status=%E2%80%A9", "", "status"},
		{adm, "POST", "/api/v1/signals", signalBody("signal_date", "0000-01-01"), "signal_date"},
		{adm, "POST", "/api/v1/signals", signalBody("entry_date", "9999-12-31"), "entry_date"},
		{adm, "POST", "/api/v1/signals", signalBody("rsi2", "99999999999"), "rsi2"},
		{adm, "POST", "/api/v1/signals", signalBody("return_2d", "-1000000"), "return_2d"},
		{adm, "POST", "/api/v1/signals", signalBody("expires_at", "0000-01-01T00:00:00Z"), "expires_at"},
		{adm, "PUT", "/api/v1/settings/position-size", `{"mode":"shares","value":"5","value":"500000"}`, "value"},
		{adm, "POST", "/api/v1/signals/6f1c1b8e-3c3e-4c8e-9d7e-0a1b2c3d4e5f/confirm", `{"SIDE":"BUY"}`, "SIDE"},
	}
	for _, tc := range cases {
		r := tc.c.do(tc.method, tc.path, nilIfEmpty(tc.body))
		if r.status != http.StatusUnprocessableEntity {
			t.Errorf("%s %s %s: %d %s, want 422", tc.method, tc.path, tc.body, r.status, r.body)
			continue
		}
		p := r.problem(t)
		if len(p.Errors) == 0 || p.Errors[0].Field != tc.field {
			t.Errorf("%s %s: errors %+v, want one at %q", tc.method, tc.path, p.Errors, tc.field)
		}
	}

	// Ten refused logins for the subscriber's address do not lock it: a
	// request refused at the boundary never reached the throttle.
	for range 10 {
		nobody.do("POST", "/api/v1/auth/login", `{"email":"`+sub.user.Email+`","password":"\u0000"}`)
	}
	if r := nobody.do("POST", "/api/v1/auth/login", map[string]string{"email": sub.user.Email, "password": sub.password}); r.status != http.StatusOK {
		t.Errorf("login after refused inputs: %d %s", r.status, r.body)
	}

	// The media type is parsed: case and parameters do not matter, another
	// type or charset is refused.
	for ct, want := range map[string]int{
		"APPLICATION/JSON; charset=utf-8":  http.StatusOK,
		"application/json;charset=UTF-8":   http.StatusOK,
		"text/plain":                       http.StatusBadRequest,
		"application/json; charset=latin1": http.StatusBadRequest,
		"application/jsonx":                http.StatusBadRequest,
	} {
		req, _ := http.NewRequest("PUT", env.ts.URL+"/api/v1/settings/position-size", strings.NewReader(`{"mode":"shares","value":"5"}`))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.AddCookie(&http.Cookie{Name: env.srv.sessionCookieName(), Value: adm.session})
		res, err := env.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("Content-Type %q: %d %s, want %d", ct, res.StatusCode, b, want)
		}
	}
}

// signalBody is a valid new signal with field set to value.
func signalBody(field, value string) string {
	m := map[string]any{"ticker": "AAPL", "strategy": "II", "kind": "entry", "signal_date": "2026-11-20",
		"entry_date": time.Now().AddDate(0, 0, 7).Format(time.DateOnly), "ref_close": "187.25", "rsi2": "3.1", "return_2d": "-0.042",
		"entry_mode": "next_open_market", "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}
	m[field] = value
	b, _ := json.Marshal(m)
	return string(b)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nasty are the values the route fuzzer's seeds put in every text field
// and query parameter: each is something PostgreSQL or a parser can refuse.
var nasty = []string{
	"a\x00b", "a\u2028b", "\xff\xfe", "\x1b[2J", "0000-01-01", "99999-12-31", "-1",
	"99999999999999999999999999999999999999", "1e400", "NaN", strings.Repeat("x", 3000),
	"6f1c1b8e-3c3e-4c8e-9d7e-0a1b2c3d4e5f", "a#b", "%00", "", " ",
}

// specSeeds returns, for the operation documenting method and echo path,
// seed query strings and bodies built from its parameters and request
// body schema: one declared field at a time holding each nasty value, the
// others valid (from the schema), so each value reaches the code behind
// the checks of the other fields.
func specSeeds(doc *openapi3.T, method, path string) (queries []string, bodies []string) {
	item := doc.Paths.Value(specPath(path))
	if item == nil || item.GetOperation(method) == nil {
		return nil, nil
	}
	op := item.GetOperation(method)
	var qnames []string
	for _, p := range append(item.Parameters, op.Parameters...) {
		if p.Value != nil && p.Value.In == "query" {
			qnames = append(qnames, p.Value.Name)
		}
	}
	sort.Strings(qnames)
	for _, n := range qnames {
		for _, v := range nasty {
			queries = append(queries, url.Values{n: {v}}.Encode())
		}
	}
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return queries, nil
	}
	mt := op.RequestBody.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return queries, nil
	}
	base := map[string]any{}
	var props []string
	for name, ps := range mt.Schema.Value.Properties {
		props = append(props, name)
		base[name] = validValue(name, ps)
	}
	sort.Strings(props)
	for _, n := range props {
		for _, v := range nasty {
			obj := maps.Clone(base)
			obj[n] = v
			b, _ := json.Marshal(obj)
			bodies = append(bodies, strings.ReplaceAll(string(b), `\ufffd`, "\xff"))
		}
	}
	b, _ := json.Marshal(base)
	return queries, append(bodies, string(b))
}

// validValue returns a value the schema accepts, as a fuzz seed's base.
func validValue(name string, ref *openapi3.SchemaRef) any {
	s := ref.Value
	if s == nil {
		return "x"
	}
	for len(s.AllOf) > 0 && s.AllOf[0].Value != nil && s.Type == nil {
		s = s.AllOf[0].Value
	}
	switch {
	case len(s.Examples) > 0:
		return s.Examples[0]
	case s.Example != nil:
		return s.Example
	case len(s.Enum) > 0:
		return s.Enum[0]
	case s.Type.Includes("null"):
		return nil
	case s.Type.Is("boolean"):
		return false
	case s.Type.Includes("integer"), s.Type.Includes("number"):
		return 1
	case s.Type.Is("array"):
		if s.Items != nil {
			return []any{validValue(name, s.Items)}
		}
		return []any{}
	case s.Format == "date":
		return "2026-11-20"
	case s.Format == "date-time":
		return time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	case s.Format == "uuid":
		return "6f1c1b8e-3c3e-4c8e-9d7e-0a1b2c3d4e5f"
	case s.Format == "email" || strings.Contains(name, "email"):
		return "fuzz@example.com"
	case strings.Contains(name, "password"):
		return "correct horse battery staple"
	case s.Pattern != "":
		return "5"
	}
	return "x"
}

// FuzzRouteInputs sends arbitrary query strings and bodies to every route
// of the router (as a signed-in admin, so handlers run rather than the
// authorization refusing) and fails on any 5xx. The seeds come from the
// route table and api/openapi.yaml: every documented query parameter and
// body field holding each nasty value.
func FuzzRouteInputs(f *testing.F) {
	env := newBrokerEnvWith(f, brokerEnvOptions{trading: true})
	admin := env.newAccount(auth.Admin, true)
	adm := env.signIn(admin)
	doc := loadSpec(f)
	type route struct{ method, path string }
	var routes []route
	for _, r := range env.srv.e.Routes() {
		if r.Method == echo.RouteNotFound || r.Method == "echo_route_any" || !strings.HasPrefix(r.Path, apiPrefix) ||
			r.Path == apiPrefix+"/auth/logout" || strings.HasPrefix(r.Path, apiPrefix+"/ibkr/ws") {
			continue // logging out would end the fuzzer's session; the WebSocket needs an upgrade
		}
		routes = append(routes, route{r.Method, r.Path})
	}
	slices.SortFunc(routes, func(a, b route) int { return strings.Compare(a.method+a.path, b.method+b.path) })
	for i, r := range routes {
		qs, bs := specSeeds(doc, r.method, r.path)
		for _, q := range qs {
			f.Add(i, q, []byte(nil))
		}
		for _, b := range bs {
			f.Add(i, "", []byte(b))
		}
		f.Add(i, "", []byte(`{"a":"\u0000","a":1}`))
	}
	cl := env.ts.Client()
	cl.Timeout = 30 * time.Second
	f.Fuzz(func(t *testing.T, i int, query string, body []byte) {
		r := routes[uint(i)%uint(len(routes))]
		path := pathParam.ReplaceAllStringFunc(r.path, func(p string) string {
			if p == ":mode" {
				return "paper"
			}
			return "6f1c1b8e-3c3e-4c8e-9d7e-0a1b2c3d4e5f"
		})
		path = strings.ReplaceAll(path, "*", "portfolio/accounts")
		target := env.ts.URL + path
		if query != "" {
			target += "?" + query
		}
		req, err := http.NewRequest(r.method, target, bytes.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Idempotency-Key", "fuzz")
		if !strings.HasPrefix(r.path, apiPrefix+"/auth/") {
			// A sign-in would end the session it came with.
			req.AddCookie(&http.Cookie{Name: env.srv.sessionCookieName(), Value: adm.session})
		}
		res, err := cl.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, target, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 500 {
			t.Errorf("%s %s %q: %d %s", r.method, path, query, res.StatusCode, b)
		}
	})
}

// TestSpecDocumentsBoundaryAnswers: what the boundary may answer on any
// API route is documented on every operation — 503 when the database is
// down, 400 and 422 for a query string (every route has one, if only
// unexpected) or a body the input-cleaning rule or the decoder refuses.
func TestSpecDocumentsBoundaryAnswers(t *testing.T) {
	doc := loadSpec(t)
	for path, item := range doc.Paths.Map() {
		if !strings.HasPrefix(path, apiPrefix) {
			continue
		}
		for method, op := range item.Operations() {
			for _, code := range []string{"400", "422", "503"} {
				if op.Responses.Value(code) == nil {
					t.Errorf("%s %s does not document %s", method, path, code)
				}
			}
		}
	}
}

// FuzzDecodeStrict feeds arbitrary bodies to the one JSON decoder: it never
// panics, every refusal is an invalid_argument, and every string of an
// accepted body passed the input-cleaning rule.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{`{"side":"BUY"}`, `{"SIDE":"BUY"}`, `{"side":"a","side":"b"}`, `{"side":"\u0000"}`,
		"{\"side\":\"\xff\"}", `{"side":"\ud800"}`, `{"name":"n","scopes":["a",{"x":1}]}`, `{"signature_key_pem":"a\nb"}`,
		`{"expires_at":"2026-11-23T14:30:00Z","limit_price":null}`, `[]`, `null`, `{"a":{"b":{"c":[]}}}`, `{} {}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var token struct {
			Name   string   `json:"name"`
			Scopes []string `json:"scopes"`
		}
		for _, v := range []any{&token, &broker.Input{}, &trading.NewSignal{}, &map[string]any{}} {
			err := decodeStrict(body, v)
			if err == nil {
				if b, _ := json.Marshal(v); strings.Contains(string(b), `\u0000`) {
					t.Errorf("%q decoded with a NUL into %T", body, v)
				}
				continue
			}
			if e := errs.As(err); e == nil || e.Code != errs.Invalid {
				t.Errorf("%q into %T: %v, want invalid_argument", body, v, err)
			}
		}
	})
}
