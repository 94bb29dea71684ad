package trading

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
)

// Lists are ordered newest first by (created_at, id); a cursor is the
// position of the last item of a page, opaque to clients.

// DefaultLimit and MaxLimit bound a page.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

type cursor struct {
	at time.Time
	id string
}

func encodeCursor(at time.Time, id string) string {
	raw := strconv.FormatInt(at.UnixMicro(), 10) + "|" + id
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodeCursor parses a client's cursor; "" is the first page.
func decodeCursor(s string) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := errs.Fields("invalid cursor", errs.FieldError{Field: "cursor", Message: "not a cursor this server issued"})
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	if !ok || !validID(id) {
		return nil, bad
	}
	us, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, bad
	}
	return &cursor{at: time.UnixMicro(us).UTC(), id: id}, nil
}

// pageLimit checks a client's limit; 0 means DefaultLimit.
func pageLimit(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultLimit, nil
	case n < 0 || n > MaxLimit:
		return 0, errs.Fields("invalid limit", errs.FieldError{Field: "limit", Message: "must be between 1 and " + strconv.Itoa(MaxLimit)})
	}
	return n, nil
}

// parsePage checks a list request's limit and cursor, the two inputs every
// list shares.
func parsePage(limit int, after string) (int, *cursor, error) {
	n, err := pageLimit(limit)
	if err != nil {
		return 0, nil, err
	}
	cur, err := decodeCursor(after)
	if err != nil {
		return 0, nil, err
	}
	return n, cur, nil
}
