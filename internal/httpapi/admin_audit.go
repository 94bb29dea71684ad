package httpapi

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
)

// adminAudit lists the audit trail newest first: filters user (id) and
// action, cursor pagination.
func (s *Server) adminAudit(c echo.Context) error {
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	if limit < 0 || limit > 500 {
		return errs.Fields("invalid limit", errs.FieldError{Field: "limit", Message: "must be between 1 and 500"})
	}
	f := audit.ListFilter{UserID: c.QueryParam("user"), Action: c.QueryParam("action"), Limit: limit}
	if v := c.QueryParam("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return errs.Fields("invalid cursor", errs.FieldError{Field: "cursor", Message: "not a cursor this server issued"})
		}
		f.Before = n
	}
	list, next, err := audit.List(c.Request().Context(), s.pool, f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newPage(list, next))
}

// adminAuditVerify recomputes the hash chain and names the first entry
// that does not match.
func (s *Server) adminAuditVerify(c echo.Context) error {
	v, err := audit.Verify(c.Request().Context(), s.pool)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}
