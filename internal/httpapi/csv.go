package httpapi

import (
	"context"
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/errs"
)

// maxCSVRows bounds one CSV export.
const maxCSVRows = 100_000

// listOrCSV answers a list that can be downloaded: ?format=csv runs
// export, which writes every matching row as CSV; json, or none, answers
// the page list returns.
func listOrCSV[T any](c echo.Context, export func() error, list func() ([]T, string, error)) error {
	switch c.QueryParam("format") {
	case "csv":
		return export()
	case "", "json":
	default:
		return errs.Fields("invalid format", errs.FieldError{Field: "format", Message: "must be json or csv"})
	}
	items, next, err := list()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newPage(items, next))
}

// allPages reads every page of a list, starting from the first: what an
// export does before it writes a byte, so that an error is still a problem
// answer and not a truncated file. what names the rows and narrow the
// filters that make a smaller export, for the error when there are more
// than maxCSVRows.
func allPages[T any](ctx context.Context, page func(ctx context.Context, cursor string) ([]T, string, error), what, narrow string) ([]T, error) {
	var rows []T
	cursor := ""
	for {
		list, next, err := page(ctx, cursor)
		if err != nil {
			return nil, err
		}
		rows = append(rows, list...)
		if next == "" {
			return rows, nil
		}
		if len(rows) >= maxCSVRows {
			return nil, errs.E(errs.Invalid, "more than %d %s match; narrow the filters (%s)", maxCSVRows, what, narrow)
		}
		cursor = next
	}
}

// writeCSV answers with a CSV download named name-<time>.csv: a byte order
// mark first (without it Excel reads UTF-8 as its local code page, and
// "DU•••4567" comes out garbled), then header, then the records, every
// cell defused of spreadsheet formulas.
func writeCSV(c echo.Context, name string, header []string, records [][]string) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`-`+time.Now().UTC().Format("20060102-150405")+`.csv"`)
	c.Response().WriteHeader(http.StatusOK)
	_, _ = c.Response().Write([]byte("\uFEFF"))
	w := csv.NewWriter(c.Response())
	_ = w.Write(header)
	for _, rec := range records {
		for i, v := range rec {
			rec[i] = csvSafe(v)
		}
		_ = w.Write(rec)
	}
	w.Flush()
	return w.Error()
}

// csvSafe defuses spreadsheet formulas: IBKR's texts end up in the file and
// a cell starting with =, +, - or @ would run as a formula when opened.
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			return v // a negative number is data, not a formula
		}
		return "'" + v
	}
	return v
}
