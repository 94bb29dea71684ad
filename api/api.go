// Package api holds Ordertune's OpenAPI document, compiled into the binary
// so that the server can serve the description of exactly the routes it was
// built with.
package api

import _ "embed"

// spec is the document; Spec hands out copies so no caller can change what
// the next one reads.
//
//go:embed openapi.yaml
var spec []byte

// Spec returns the OpenAPI 3.1 document (YAML) describing every route the
// server registers.
func Spec() []byte { return append([]byte(nil), spec...) }
