package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/errs"
)

// decodeJSON is the one JSON decoder for every request body. It is strict
// where encoding/json is lenient: the media type is application/json
// (parsed, so case and parameters do not matter), the body is one JSON
// object, keys match the field names exactly (encoding/json ignores case),
// a key appears at most once in an object (encoding/json keeps the last),
// unknown fields are refused, and every string passes the input-cleaning
// rule (textProblem). Every failure is a clear 4xx, never a 500.
func decodeJSON(c echo.Context, v any) error {
	req := c.Request()
	if ct := req.Header.Get(echo.HeaderContentType); ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		if cs, ok := params["charset"]; err != nil || mt != echo.MIMEApplicationJSON || ok && !strings.EqualFold(cs, "utf-8") {
			return errs.E(errs.Invalid, "send the body as application/json")
		}
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge)
		}
		return errs.E(errs.Invalid, "the request body could not be read")
	}
	return decodeStrict(body, v)
}

// decodeStrict decodes body into v under decodeJSON's rules.
func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errs.E(errs.Invalid, "the request body is empty; send a JSON object")
	}
	w := walker{dec: json.NewDecoder(bytes.NewReader(body))}
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if err := w.object(t); err != nil {
		return err
	}
	if _, err := w.dec.Token(); err != io.EOF {
		return errs.E(errs.Invalid, "send exactly one JSON object")
	}
	if len(w.fields) > 0 {
		return errs.Fields("invalid request", w.fields...)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return errs.Fields("invalid request", errs.FieldError{Field: typ.Field, Message: fmt.Sprintf("must be a %s", jsonKind(typ.Type.Kind().String()))})
		}
		return errs.E(errs.Invalid, "the request body could not be read as JSON")
	}
	return nil
}

// walker checks a JSON document token by token against the Go type it
// will be decoded into, before encoding/json sees it.
type walker struct {
	dec    *json.Decoder
	fields []errs.FieldError
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// object reads the top-level value, which must be an object.
func (w *walker) object(t reflect.Type) error {
	tok, err := w.dec.Token()
	if err != nil {
		return syntaxProblem(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errs.E(errs.Invalid, "the request body must be a JSON object")
	}
	return w.members(t, "")
}

// value reads one value of type t (nil: any) at path; multiline says
// whether a string there may hold line breaks.
func (w *walker) value(t reflect.Type, path string, multiline bool) error {
	tok, err := w.dec.Token()
	if err != nil {
		return syntaxProblem(err)
	}
	t = concrete(t)
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '[' {
			var elem reflect.Type
			if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
				elem = t.Elem()
			}
			for w.dec.More() {
				if err := w.value(elem, path, multiline); err != nil {
					return err
				}
			}
			_, err := w.dec.Token()
			return syntaxProblem(err)
		}
		return w.members(t, path)
	case string:
		if p := textProblem(tok, multiline); p != "" && !w.named(path) {
			w.fields = append(w.fields, errs.FieldError{Field: path, Message: p})
		}
	}
	return nil
}

// members reads an object's members after its '{'. When t is a struct,
// each key must be one of its fields, spelt exactly; in every object a key
// may appear once.
func (w *walker) members(t reflect.Type, path string) error {
	var fields map[string]reflect.Type
	var multi map[string]bool
	if t != nil && t.Kind() == reflect.Struct {
		fields = jsonFields(t)
		multi = multilineFields[t]
	}
	var elem reflect.Type
	if t != nil && t.Kind() == reflect.Map {
		elem = t.Elem()
	}
	seen := map[string]bool{}
	for w.dec.More() {
		tok, err := w.dec.Token()
		if err != nil {
			return syntaxProblem(err)
		}
		key, _ := tok.(string)
		at := key
		if path != "" {
			at = path + "." + key
		}
		if p := textProblem(key, false); p != "" {
			where := path
			if where == "" {
				where = "body"
			}
			return errs.Fields("invalid request", errs.FieldError{Field: where, Message: "a key " + p})
		}
		if seen[key] {
			return errs.Fields("invalid request", errs.FieldError{Field: at, Message: "appears more than once"})
		}
		seen[key] = true
		ft := elem
		if fields != nil {
			var ok bool
			if ft, ok = fields[key]; !ok {
				return errs.Fields("invalid request", errs.FieldError{Field: at, Message: "unknown field"})
			}
		}
		if err := w.value(ft, at, multi[key]); err != nil {
			return err
		}
	}
	_, err := w.dec.Token()
	return syntaxProblem(err)
}

// named reports whether path already has a field error (one per field).
func (w *walker) named(path string) bool {
	for _, f := range w.fields {
		if f.Field == path {
			return true
		}
	}
	return false
}

// concrete strips pointers from t and returns nil (any shape accepted) for
// types that decode themselves or hold any JSON.
func concrete(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	return t
}

// syntaxProblem turns a tokenizer error into the client's message; nil
// stays nil.
func syntaxProblem(err error) error {
	if err == nil {
		return nil
	}
	var syn *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errs.E(errs.Invalid, "the request body ends before the JSON does")
	case errors.As(err, &syn):
		return errs.E(errs.Invalid, "the request body is not valid JSON (at byte %d)", syn.Offset)
	}
	return errs.E(errs.Invalid, "the request body could not be read as JSON")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "list"
	case "map", "struct":
		return "object"
	}
	return "number"
}
