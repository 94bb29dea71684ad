package trading

import (
	"strconv"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/pagecursor"
)

// Lists are ordered newest first by (created_at, id) and paged by a
// pagecursor.

// DefaultLimit and MaxLimit bound a page.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

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
func parsePage(limit int, after string) (int, *pagecursor.Cursor, error) {
	n, err := pageLimit(limit)
	if err != nil {
		return 0, nil, err
	}
	cur, err := pagecursor.Decode(after)
	if err != nil {
		return 0, nil, err
	}
	return n, cur, nil
}
