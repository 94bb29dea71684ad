package api

import (
	"bytes"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestSpecLoadsAndValidates proves the document is well-formed OpenAPI 3.1
// as kin-openapi, the validator the handler tests use, understands it.
func TestSpecLoadsAndValidates(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(Spec())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() || doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	// Every operation names an operationId, and no two share one: clients
	// generate method names from them.
	seen := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", where)
				continue
			}
			if prev, dup := seen[op.OperationID]; dup {
				t.Errorf("operationId %q used by %s and %s", op.OperationID, prev, where)
			}
			seen[op.OperationID] = where
		}
	}
}

// TestSpecIsACopy proves a caller cannot change the document others read.
func TestSpecIsACopy(t *testing.T) {
	a := Spec()
	if !bytes.HasPrefix(a, []byte("# Ordertune")) || !strings.Contains(string(a), "openapi: 3.1.0") {
		t.Fatalf("Spec() does not look like the document: %.40q", a)
	}
	a[0] = 'X'
	if b := Spec(); b[0] != '#' {
		t.Errorf("changing one copy changed the next: %.10q", b)
	}
}
