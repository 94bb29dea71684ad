// Package pagecursor is the keyset cursor of the API's lists: they are
// ordered newest first by (time, id), and a cursor is the position of a
// page's last item, opaque to clients. The next page is what comes after
// it in that order.
package pagecursor

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ids"
)

// Cursor is the position of a page's last item.
type Cursor struct {
	At time.Time
	ID string
}

// PostgreSQL's timestamptz runs from 4713 BC to 294276 AD; a cursor past
// either end was not issued here.
const (
	minMicros = -210866803200000000
	maxMicros = 9224318015999999999 / 10
)

// Encode returns the cursor of the item at (at, id).
func Encode(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMicro(), 10) + "|" + id))
}

// Decode parses a client's cursor; "" is the first page (nil). Anything
// this server did not issue is refused at the field "cursor".
func Decode(s string) (*Cursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := errs.Fields("invalid cursor", errs.FieldError{Field: "cursor", Message: "not a cursor this server issued"})
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	if !ok || !ids.Valid(id) {
		return nil, bad
	}
	us, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || us < minMicros || us > maxMicros {
		return nil, bad
	}
	return &Cursor{At: time.UnixMicro(us).UTC(), ID: id}, nil
}
