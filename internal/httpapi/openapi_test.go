package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/api"
	"github.com/ordertune/ordertune/internal/auth"
)

// loadSpec parses and validates api/openapi.yaml as the server embeds it.
func loadSpec(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec())
	if err != nil {
		t.Fatalf("load api/openapi.yaml: %v", err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("api/openapi.yaml is not valid OpenAPI: %v", err)
	}
	return doc
}

// specPath turns an echo route path into the OpenAPI path that documents
// it: ":name" becomes "{name}", and echo's trailing "*" (the rest of the
// path, slashes included; OpenAPI has no such parameter) becomes "{path}".
func specPath(echoPath string) string {
	segs := strings.Split(echoPath, "/")
	for i, s := range segs {
		switch {
		case strings.HasPrefix(s, ":"):
			segs[i] = "{" + s[1:] + "}"
		case s == "*" && i == len(segs)-1:
			segs[i] = "{path}"
		}
	}
	return strings.Join(segs, "/")
}

// routeDiff compares the routes an echo instance registers with the
// operations doc describes. missing lists registered routes the document
// lacks; extra lists documented operations no route serves. Both are sorted
// "METHOD /openapi/path" strings, so a failure names exactly what to add.
func routeDiff(routes []*echo.Route, doc *openapi3.T) (missing, extra []string) {
	registered := map[string]bool{}
	for _, r := range routes {
		if r.Method == echo.RouteNotFound {
			continue // echo's 404 fallback, not an endpoint
		}
		registered[r.Method+" "+specPath(r.Path)] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	for k := range registered {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !registered[k] {
			extra = append(extra, k)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return missing, extra
}

// TestSpecMatchesRoutes is the contract: every route the real server
// registers is documented in api/openapi.yaml, and everything documented is
// served.
func TestSpecMatchesRoutes(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	env := newAuthEnv(t, authEnvOptions{allFeatures: true})
	routes := env.srv.e.Routes()
	if len(routes) < 40 {
		t.Fatalf("only %d routes registered; the comparison would prove little", len(routes))
	}
	missing, extra := routeDiff(routes, doc)
	for _, m := range missing {
		t.Errorf("route %s is registered but not in api/openapi.yaml; document it", m)
	}
	for _, x := range extra {
		t.Errorf("api/openapi.yaml documents %s but no route serves it", x)
	}
	env.browser().do(http.MethodGet, "/healthz", nil) // the log scan wants one request
}

// TestRouteDiffBites proves the contract test fails when it should: a route
// registered without a spec entry, and a spec entry whose route is gone, are
// both named.
func TestRouteDiffBites(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	s, _ := newTestServer(t)
	if missing, extra := routeDiff(s.e.Routes(), doc); len(missing)+len(extra) > 0 {
		t.Fatalf("the real server already differs from the spec: missing %v, extra %v", missing, extra)
	}

	s.e.GET(apiPrefix+"/widgets/:id/parts/*", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	s.e.POST(apiPrefix+"/me", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	missing, extra := routeDiff(s.e.Routes(), doc)
	if diff := cmp.Diff([]string{"GET /api/v1/widgets/{id}/parts/{path}", "POST /api/v1/me"}, missing); diff != "" {
		t.Errorf("missing (-want +got):\n%s", diff)
	}
	if len(extra) != 0 {
		t.Errorf("extra = %v, want none", extra)
	}

	// A documented operation whose route disappeared.
	doc.Paths.Set("/api/v1/gone/{id}", &openapi3.PathItem{Delete: &openapi3.Operation{}})
	doc.Paths.Value("/api/v1/me").Put = &openapi3.Operation{}
	_, extra = routeDiff(s.e.Routes(), doc)
	if diff := cmp.Diff([]string{"DELETE /api/v1/gone/{id}", "PUT /api/v1/me"}, extra); diff != "" {
		t.Errorf("extra (-want +got):\n%s", diff)
	}
}

func TestSpecPath(t *testing.T) {
	tests := []struct{ echo, want string }{
		{"/", "/"},
		{"/healthz", "/healthz"},
		{"/api/v1/signals/:id/confirm", "/api/v1/signals/{id}/confirm"},
		{"/api/v1/broker/:mode", "/api/v1/broker/{mode}"},
		{"/assets/*", "/assets/{path}"},
		{"/api/v1/ibkr/*", "/api/v1/ibkr/{path}"},
		{"/a/:x/:y", "/a/{x}/{y}"},
		{"/a*b", "/a*b"}, // not echo's trailing wildcard: left as is, so it cannot match by accident
	}
	for _, tt := range tests {
		if got := specPath(tt.echo); got != tt.want {
			t.Errorf("specPath(%q) = %q, want %q", tt.echo, got, tt.want)
		}
	}
}

// TestServesSpec: the document is served as embedded, revalidated by ETag.
func TestServesSpec(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t)
	rec := get(t, s.Handler(), openAPIPath, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s = %d %s", openAPIPath, rec.Code, rec.Body)
	}
	if diff := cmp.Diff(string(api.Spec()), rec.Body.String()); diff != "" {
		t.Errorf("served document differs from api/openapi.yaml (-want +got):\n%.2000s", diff)
	}
	got := map[string]string{"Content-Type": rec.Header().Get("Content-Type"), "Cache-Control": rec.Header().Get("Cache-Control")}
	want := map[string]string{"Content-Type": "application/yaml", "Cache-Control": "no-cache"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if rec := get(t, s.Handler(), openAPIPath, map[string]string{"If-None-Match": etag}); rec.Code != http.StatusNotModified {
		t.Errorf("GET with If-None-Match = %d, want 304", rec.Code)
	}
}

// specPolicy is who may call an operation, as the spec says it: security
// [] for public ones, the bearerToken requirement's scopes, the
// x-partial-session and x-roles extensions (default: both roles).
func specPolicy(doc *openapi3.T, op *openapi3.Operation) policy {
	sec := doc.Security
	if op.Security != nil {
		sec = *op.Security
	}
	if len(sec) == 0 {
		return public()
	}
	p := signedIn()
	for _, req := range sec {
		if scopes, ok := req["bearerToken"]; ok {
			p.scopes = append(p.scopes, scopes...)
		}
	}
	if v, ok := op.Extensions["x-partial-session"].(bool); ok {
		p.partial = v
	}
	if roles, ok := op.Extensions["x-roles"].([]any); ok {
		p.roles = nil
		for _, r := range roles {
			s, _ := r.(string)
			p.roles = append(p.roles, auth.Role(s))
		}
	}
	return p
}

// securityDiff compares each registered route's row of the authorization
// table with what the spec tells clients about it, and describes every
// difference. The tenant flag is the server's business, not the client's.
func securityDiff(s *Server, doc *openapi3.T) []string {
	type view struct {
		Public, Partial bool
		Roles, Scopes   []string
	}
	norm := func(p policy) view {
		v := view{Public: p.public, Partial: p.partial, Scopes: slices.Sorted(slices.Values(p.scopes))}
		if !p.public {
			for _, r := range p.roles {
				v.Roles = append(v.Roles, string(r))
			}
			slices.Sort(v.Roles)
		}
		return v
	}
	var out []string
	for _, r := range s.e.Routes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		item := doc.Paths.Value(specPath(r.Path))
		if item == nil || item.GetOperation(r.Method) == nil {
			continue // routeDiff reports it
		}
		pol, ok := s.policies[routeKey(r.Method, r.Path)]
		if !ok {
			continue // TestEveryRouteHasAPolicy reports it
		}
		if diff := cmp.Diff(norm(pol), norm(specPolicy(doc, item.GetOperation(r.Method)))); diff != "" {
			out = append(out, fmt.Sprintf("%s %s: authorization table vs spec (-table +spec):\n%s", r.Method, r.Path, diff))
		}
	}
	slices.Sort(out)
	return out
}

// TestSpecSecurityMatchesTable: the spec's security (public, token scopes,
// password-only sessions, roles) says what the authorization table
// enforces, so clients are told the truth about who may call what.
func TestSpecSecurityMatchesTable(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	s, _ := newTestServer(t)
	for _, d := range securityDiff(s, doc) {
		t.Error(d)
	}

	// And it notices a drift.
	s.policies[routeKey(http.MethodGet, apiPrefix+"/me")] = adminOnly().orScope("signals:write")
	if got := securityDiff(s, doc); len(got) != 1 || !strings.Contains(got[0], "GET /api/v1/me") {
		t.Errorf("a changed row must be reported once, got %q", got)
	}
}
