package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/notify"
)

// notifyRoutes registers in-app notifications, their preferences and
// webhook endpoints (webhooks.go).
func (s *Server) notifyRoutes() {
	api := s.apiOf(s.notify != nil, "notifications are not configured on this server")
	api(http.MethodGet, "/notifications", s.listNotifications)
	api(http.MethodPost, "/notifications/read-all", s.readAllNotifications)
	api(http.MethodPost, "/notifications/:id/read", s.readNotification)
	api(http.MethodGet, "/settings/notifications", s.getNotificationSettings)
	api(http.MethodPut, "/settings/notifications", s.putNotificationSettings)

	api(http.MethodGet, "/webhooks", s.listWebhooks)
	api(http.MethodPost, "/webhooks", s.createWebhook)
	api(http.MethodDelete, "/webhooks/:id", s.deleteWebhook)
	api(http.MethodPost, "/webhooks/:id/test", s.testWebhook)
	api(http.MethodGet, "/webhooks/:id/deliveries", s.webhookDeliveries)
}

func (s *Server) listNotifications(c echo.Context) error {
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	var unread bool
	switch c.QueryParam("unread") {
	case "", "false":
	case "true":
		unread = true
	default:
		return errs.Fields("invalid unread", errs.FieldError{Field: "unread", Message: "must be true or false"})
	}
	l, err := s.notify.Notifications(c.Request().Context(), principal(c).UserID, unread, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, l)
}

func (s *Server) readNotification(c echo.Context) error {
	if err := s.notify.MarkRead(c.Request().Context(), principal(c).UserID, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) readAllNotifications(c echo.Context) error {
	if err := s.notify.MarkAllRead(c.Request().Context(), principal(c).UserID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) getNotificationSettings(c echo.Context) error {
	p, err := s.notify.Preferences(c.Request().Context(), principal(c).UserID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Server) putNotificationSettings(c echo.Context) error {
	var in notify.Preferences
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	p, err := s.notify.SetPreferences(c.Request().Context(), principal(c).UserID, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}
