package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// specValidator checks recorded responses against api/openapi.yaml: the
// operation is found through the server's own echo router (so the route
// that answered is the one whose schema applies), and kin-openapi validates
// status, headers, content type and body. It notes every operation it saw.
type specValidator struct {
	doc  *openapi3.T
	srv  *Server
	opts *openapi3filter.Options

	mu   sync.Mutex
	seen map[string]bool // "METHOD /openapi/path"
}

func newSpecValidator(t *testing.T, srv *Server) *specValidator {
	return &specValidator{
		doc: loadSpec(t),
		srv: srv,
		opts: &openapi3filter.Options{
			// A status the operation does not document is a failure, not
			// a pass.
			IncludeResponseStatus: true,
			MultiError:            true,
			// Per validation rather than kin-openapi's global format
			// table, which other tests in the binary would share.
			SchemaValidationOptions: []openapi3.SchemaValidationOption{
				openapi3.WithStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC4122)),
			},
		},
		seen: map[string]bool{},
	}
}

// route finds the operation that documents method target through the
// server's own echo router; nil when the spec has none.
func (v *specValidator) route(method, target string) (*routers.Route, map[string]string) {
	req := httptest.NewRequest(method, target, nil)
	c := v.srv.e.NewContext(req, httptest.NewRecorder())
	v.srv.e.Router().Find(method, req.URL.EscapedPath(), c)
	path := specPath(c.Path())
	item := v.doc.Paths.Value(path)
	if item == nil || item.GetOperation(method) == nil {
		return nil, nil
	}
	params := map[string]string{}
	for i, name := range c.ParamNames() {
		if name == "*" {
			name = "path"
		}
		params[name] = c.ParamValues()[i]
	}
	return &routers.Route{Spec: v.doc, Path: path, PathItem: item, Method: method, Operation: item.GetOperation(method)}, params
}

// validate returns why a response to method target does not match the
// spec, or nil. A request no route serves must be answered by a 404 or 405
// problem, validated against the Problem schema.
func (v *specValidator) validate(method, target string, status int, header http.Header, body []byte) error {
	route, _ := v.route(method, target)
	if route == nil {
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			return fmt.Errorf("no operation in the spec for %s %s, yet status %d", method, target, status)
		}
		if ct := header.Get("Content-Type"); ct != "application/problem+json" {
			return fmt.Errorf("unrouted %s %s: Content-Type %q, want application/problem+json", method, target, ct)
		}
		var doc any
		if err := json.Unmarshal(body, &doc); err != nil {
			return fmt.Errorf("unrouted %s %s: %v", method, target, err)
		}
		return v.doc.Components.Schemas["Problem"].Value.VisitJSON(doc, append(v.opts.SchemaValidationOptions, openapi3.EnableJSONSchema2020())...)
	}
	v.mu.Lock()
	v.seen[method+" "+route.Path] = true
	v.mu.Unlock()
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: httptest.NewRequest(method, target, nil), Route: route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                v.opts,
	}
	return openapi3filter.ValidateResponse(context.Background(), in)
}

// validateRequest returns why a request does not match the spec's
// parameters and request body, or nil. Authentication is the server's to
// check, not the validator's.
func (v *specValidator) validateRequest(method, target string, header http.Header, body []byte) error {
	route, params := v.route(method, target)
	if route == nil {
		return fmt.Errorf("no operation in the spec for %s %s", method, target)
	}
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	req.Header = header.Clone()
	opts := *v.opts
	opts.AuthenticationFunc = openapi3filter.NoopAuthenticationFunc
	return openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route, Options: &opts})
}

// do sends a request as c and fails the test when the answer breaks the
// spec. Extra headers are set for this request only.
func (v *specValidator) do(t *testing.T, c *client, method, target string, body any, hdr ...string) response {
	t.Helper()
	for i := 0; i+1 < len(hdr); i += 2 {
		c.header.Set(hdr[i], hdr[i+1])
	}
	r := c.do(method, target, body)
	reqHeader := c.header.Clone()
	for i := 0; i+1 < len(hdr); i += 2 {
		c.header.Del(hdr[i])
	}
	if err := v.validate(method, target, r.status, r.header, r.body); err != nil {
		t.Errorf("%s %s → %d breaks api/openapi.yaml: %v\nbody: %.600s", method, target, r.status, err, r.body)
	}
	// A request the server accepted must be one the spec allows: the
	// spec may not demand more than the server does.
	if r.status >= 200 && r.status < 300 {
		var b []byte
		if body != nil {
			switch x := body.(type) {
			case string:
				b = []byte(x)
			default:
				j, err := json.Marshal(x)
				if err != nil {
					t.Fatal(err)
				}
				b = j
			}
			reqHeader.Set("Content-Type", "application/json")
		}
		if err := v.validateRequest(method, target, reqHeader, b); err != nil {
			t.Errorf("%s %s was accepted (%d) but the spec refuses the request: %v", method, target, r.status, err)
		}
	}
	return r
}

// unseen returns the spec's operations no response was validated for.
func (v *specValidator) unseen() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for path, item := range v.doc.Paths.Map() {
		for method := range item.Operations() {
			if !v.seen[method+" "+path] {
				out = append(out, method+" "+path)
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestSpecValidatorBites proves the validator fails answers that break the
// spec: a field missing, a float where a decimal string belongs, an
// undocumented field, an undocumented status, a problem without its
// request id, and the wrong content type.
func TestSpecValidatorBites(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t)
	v := newSpecValidator(t, s)
	jsonHdr := http.Header{"Content-Type": {"application/json"}}
	problemHdr := http.Header{"Content-Type": {"application/problem+json"}, "X-Request-Id": {"abcdef0123456789"}}
	settings := `{"position_size":{"mode":"shares","value":"5"}}`
	problem := `{"type":"about:blank","title":"Not Found","status":404,"detail":"no such signal","code":"not_found","request_id":"abcdef0123456789"}`
	tests := []struct {
		name, method, path string
		status             int
		header             http.Header
		body               string
		ok                 bool
	}{
		{"valid settings", "GET", "/api/v1/settings", 200, jsonHdr, settings, true},
		{"value as a number", "GET", "/api/v1/settings", 200, jsonHdr, `{"position_size":{"mode":"shares","value":5}}`, false},
		{"unknown mode", "GET", "/api/v1/settings", 200, jsonHdr, `{"position_size":{"mode":"lots","value":"5"}}`, false},
		{"field missing", "GET", "/api/v1/settings", 200, jsonHdr, `{}`, false},
		{"undocumented field", "GET", "/api/v1/settings", 200, jsonHdr, `{"position_size":{"mode":"off","value":null},"extra":1}`, false},
		{"undocumented status", "GET", "/api/v1/settings", 418, jsonHdr, settings, false},
		{"wrong content type", "GET", "/api/v1/settings", 200, http.Header{"Content-Type": {"text/html"}}, settings, false},
		{"valid problem", "GET", "/api/v1/signals/" + newTestUUID(), 404, problemHdr, problem, true},
		{"problem without request id header", "GET", "/api/v1/signals/" + newTestUUID(), 404, http.Header{"Content-Type": {"application/problem+json"}}, problem, false},
		{"problem with unknown code", "GET", "/api/v1/signals/" + newTestUUID(), 404, problemHdr, strings.Replace(problem, "not_found", "oops", 1), false},
		{"date not YYYY-MM-DD", "GET", "/api/v1/signals/" + newTestUUID(), 200, jsonHdr, strings.Replace(validSignal, "2026-11-20", "20.11.2026", 1), false},
		{"valid signal", "GET", "/api/v1/signals/" + newTestUUID(), 200, jsonHdr, validSignal, true},
		{"id not a uuid", "GET", "/api/v1/signals/" + newTestUUID(), 200, jsonHdr, strings.Replace(validSignal, "0b6f5f3e-8f0a-4c0e-9a57-4d1f2a9f4d11", "42", 1), false},
		{"health", "GET", "/healthz", 200, jsonHdr, `{"status":"ok"}`, true},
		{"health not ok", "GET", "/healthz", 200, jsonHdr, `{"status":"fine"}`, false},
		{"no-store missing", "POST", "/api/v1/me/recovery-codes", 200, jsonHdr, `{"recovery_codes":["a","b","c","d","e","f","g","h","i","j"]}`, false},
		{"unrouted 404 problem", "GET", "/api/v1/nope", 404, problemHdr, problem, true},
		{"unrouted 200", "GET", "/api/v1/nope", 200, jsonHdr, `{}`, false},
	}
	for _, tt := range tests {
		err := v.validate(tt.method, tt.path, tt.status, tt.header, []byte(tt.body))
		if (err == nil) != tt.ok {
			t.Errorf("%s: validate = %v, want ok %v", tt.name, err, tt.ok)
		}
	}

	id := newTestUUID()
	requests := []struct {
		name, method, path string
		header             http.Header
		body               string
		ok                 bool
	}{
		{"confirm", "POST", "/api/v1/signals/" + id + "/confirm", http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {"k1"}}, `{"side":"BUY"}`, true},
		{"confirm without key", "POST", "/api/v1/signals/" + id + "/confirm", jsonHdr, `{"side":"BUY"}`, false},
		{"confirm unknown side", "POST", "/api/v1/signals/" + id + "/confirm", http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {"k1"}}, `{"side":"HOLD"}`, false},
		{"confirm unknown field", "POST", "/api/v1/signals/" + id + "/confirm", http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {"k1"}}, `{"side":"BUY","qty":3}`, false},
		{"id not a uuid", "GET", "/api/v1/signals/42", http.Header{}, "", false},
		{"position size", "PUT", "/api/v1/settings/position-size", jsonHdr, `{"mode":"dollars","value":"2500.00"}`, true},
		{"position size without mode", "PUT", "/api/v1/settings/position-size", jsonHdr, `{"value":"2500.00"}`, false},
		{"signals with status", "GET", "/api/v1/signals?status=all&limit=10", http.Header{}, "", true},
		{"signals with unknown status", "GET", "/api/v1/signals?status=closed", http.Header{}, "", false},
		{"ibkr path with slashes", "GET", "/api/v1/ibkr/portfolio/me/summary", http.Header{}, "", true},
	}
	for _, tt := range requests {
		err := v.validateRequest(tt.method, tt.path, tt.header, []byte(tt.body))
		if (err == nil) != tt.ok {
			t.Errorf("request %s: validateRequest = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

const validSignal = `{"id":"0b6f5f3e-8f0a-4c0e-9a57-4d1f2a9f4d11","ticker":"AAPL","strategy":"II","kind":"entry",
"signal_date":"2026-11-20","entry_date":"2026-11-23","ref_close":"187.25","rsi2":"3.1","return_2d":"-0.042",
"entry_mode":"next_open_market","limit_price":null,"expires_at":"2026-11-23T14:30:00Z","created_at":"2026-11-20T21:00:00Z",
"withdrawn_at":null,"status":"open","my_confirmation":null}`

// newTestUUID returns a random version 4 UUID.
func newTestUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
