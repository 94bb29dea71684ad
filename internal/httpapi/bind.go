package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/errs"
)

// decodeJSON reads the request body into v. Unknown fields are refused so a
// misspelt field is an error rather than silently ignored, and every
// failure is a clear 4xx, never a 500.
func decodeJSON(c echo.Context, v any) error {
	req := c.Request()
	if ct := req.Header.Get(echo.HeaderContentType); ct != "" && !strings.HasPrefix(ct, echo.MIMEApplicationJSON) {
		return errs.E(errs.Invalid, "send the body as application/json")
	}
	dec := json.NewDecoder(req.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge)
		case errors.Is(err, io.EOF):
			return errs.E(errs.Invalid, "the request body is empty; send a JSON object")
		case errors.As(err, &syn):
			return errs.E(errs.Invalid, "the request body is not valid JSON (at byte %d)", syn.Offset)
		case errors.As(err, &typ):
			return errs.Fields("invalid request", errs.FieldError{Field: typ.Field, Message: fmt.Sprintf("must be a %s", jsonKind(typ.Type.Kind().String()))})
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return errs.Fields("invalid request", errs.FieldError{Field: field, Message: "unknown field"})
		}
		return errs.E(errs.Invalid, "the request body could not be read as JSON")
	}
	if dec.More() {
		return errs.E(errs.Invalid, "send exactly one JSON object")
	}
	return nil
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
