package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"unicode"

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
	// Reading the trail is itself on the trail, before the read: a read
	// that cannot be recorded does not happen.
	err = s.auditAdmin(c, "audit.read", map[string]any{"user": auditText(f.UserID), "action": auditText(f.Action),
		"limit": f.Limit, "before": f.Before})
	if err != nil {
		return err
	}
	list, next, err := audit.List(c.Request().Context(), s.pool, f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newPage(list, next))
}

// adminAuditVerify recomputes the hash chain and names the first entry
// that does not match. The run and its result are audited.
func (s *Server) adminAuditVerify(c echo.Context) error {
	v, err := audit.Verify(c.Request().Context(), s.pool)
	if err != nil {
		return err
	}
	details := map[string]any{"ok": v.OK, "checked": v.Checked, "unsealed": v.Unsealed}
	if v.FirstBad != nil {
		details["first_bad_seq"] = v.FirstBad.Seq
	}
	if err := s.auditAdmin(c, "audit.verify", details); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// auditAdmin records an admin's read of the audit trail or the
// confirmation log.
func (s *Server) auditAdmin(c echo.Context, action string, details map[string]any) error {
	p := principal(c)
	return audit.Append(c.Request().Context(), s.pool, audit.Event{UserID: p.UserID, ActorID: p.UserID, IP: c.RealIP(),
		Action: action, Details: details})
}

// maxAuditText bounds a filter value copied into an audit row.
const maxAuditText = 200

// auditText makes a query parameter safe to keep in an audit row (jsonb
// refuses NUL): invalid UTF-8 and control characters become U+FFFD, and
// the value is cut to maxAuditText runes.
func auditText(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	out := make([]rune, 0, min(len(v), maxAuditText))
	for _, r := range v {
		if len(out) == maxAuditText {
			break
		}
		if unicode.IsControl(r) {
			r = unicode.ReplacementChar
		}
		out = append(out, r)
	}
	return string(out)
}
