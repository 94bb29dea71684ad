package httpapi

import (
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/errs"
)

// The input-cleaning rule. Every text a client sends — each string in a
// JSON body, each query parameter's name and value — passes textProblem
// before any handler sees it, so nothing PostgreSQL would refuse (a NUL,
// invalid UTF-8) or a log or the admin pages would show misleadingly
// (control characters, line and paragraph separators, bidirectional
// overrides) gets further than the boundary. A refusal is a 422 naming the
// field.

// Limits on one text value, in bytes. Every feature bounds its own fields
// more tightly (an e-mail is at most 254 bytes, a token name 100); these
// keep anything unbounded — a filter, a cursor — from reaching an index
// entry PostgreSQL cannot store.
const (
	maxTextBytes      = 1024
	maxMultilineBytes = 64 << 10
)

// multilineFields lists, per body type, the fields that legitimately hold
// several lines: PEM keys and DH parameters. They may contain \n, \r and
// \t; no other field may.
var multilineFields = map[reflect.Type]map[string]bool{
	reflect.TypeFor[broker.Input](): {"signature_key_pem": true, "encryption_key_pem": true, "dh_params": true},
}

// textProblem returns what is wrong with s as a text value, or "" when
// nothing is. U+FFFD is refused with invalid UTF-8: the JSON decoder puts
// it in place of invalid bytes and lone surrogate escapes, and no field of
// ours has a use for it.
func textProblem(s string, multiline bool) string {
	limit := maxTextBytes
	if multiline {
		limit = maxMultilineBytes
	}
	if len(s) > limit {
		return fmt.Sprintf("must be at most %d bytes long", limit)
	}
	if !utf8.ValidString(s) {
		return "must be valid UTF-8 text"
	}
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			return "must be valid UTF-8 text"
		case multiline && (r == '\n' || r == '\r' || r == '\t'):
		case r < 0x20, r >= 0x7f && r < 0xa0:
			return "must not contain control characters"
		case r == '\u2028', r == '\u2029':
			return "must not contain line or paragraph separators"
		case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
			return "must not contain bidirectional text controls"
		}
	}
	return ""
}

// cleanQuery applies the input-cleaning rule to every query parameter of
// every route, before routing and authorization: a malformed query string
// is a 400, a bad name or value a 422 at the parameter.
func (s *Server) cleanQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		raw := c.Request().URL.RawQuery
		if raw == "" {
			return next(c)
		}
		q, err := url.ParseQuery(raw)
		if err != nil {
			return errs.E(errs.Invalid, "the query string is malformed")
		}
		if err := checkQuery(q); err != nil {
			return err
		}
		return next(c)
	}
}

// checkQuery returns a 422 listing every query parameter that breaks the
// input-cleaning rule, or nil.
func checkQuery(q url.Values) error {
	var fe []errs.FieldError
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if p := textProblem(k, false); p != "" {
			fe = append(fe, errs.FieldError{Field: "query", Message: "a parameter name " + p})
			continue
		}
		for _, v := range q[k] {
			if p := textProblem(v, false); p != "" {
				fe = append(fe, errs.FieldError{Field: k, Message: p})
				break
			}
		}
	}
	if len(fe) > 0 {
		return errs.Fields("invalid query parameter", fe...)
	}
	return nil
}

// jsonFields returns the exact JSON names of struct type t's fields, each
// with its type, following encoding/json's rules for tags and embedded
// structs. A field without a tag is named by its Go name: keys must match
// exactly, where encoding/json would accept any case.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
