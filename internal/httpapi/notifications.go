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
	api(http.MethodGet, "/notifications", reply(http.StatusOK, s.listNotifications))
	api(http.MethodPost, "/notifications/read-all", done(s.readAllNotifications))
	api(http.MethodPost, "/notifications/:id/read", done(s.readNotification))
	api(http.MethodGet, "/settings/notifications", reply(http.StatusOK, s.getNotificationSettings))
	api(http.MethodPut, "/settings/notifications", replyTo(http.StatusOK, s.putNotificationSettings))

	api(http.MethodGet, "/webhooks", reply(http.StatusOK, s.listWebhooks))
	api(http.MethodPost, "/webhooks", replyTo(http.StatusCreated, s.createWebhook))
	api(http.MethodDelete, "/webhooks/:id", done(s.deleteWebhook))
	api(http.MethodPost, "/webhooks/:id/test", reply(http.StatusAccepted, s.testWebhook))
	api(http.MethodGet, "/webhooks/:id/deliveries", reply(http.StatusOK, s.webhookDeliveries))
}

func (s *Server) listNotifications(c echo.Context) (notify.List, error) {
	limit, err := queryLimit(c)
	if err != nil {
		return notify.List{}, err
	}
	var unread bool
	switch c.QueryParam("unread") {
	case "", "false":
	case "true":
		unread = true
	default:
		return notify.List{}, errs.Fields("invalid unread", errs.FieldError{Field: "unread", Message: "must be true or false"})
	}
	return s.notify.Notifications(c.Request().Context(), principal(c).UserID, unread, limit)
}

func (s *Server) readNotification(c echo.Context) error {
	return s.notify.MarkRead(c.Request().Context(), principal(c).UserID, c.Param("id"))
}

func (s *Server) readAllNotifications(c echo.Context) error {
	return s.notify.MarkAllRead(c.Request().Context(), principal(c).UserID)
}

func (s *Server) getNotificationSettings(c echo.Context) (notify.Preferences, error) {
	return s.notify.Preferences(c.Request().Context(), principal(c).UserID)
}

func (s *Server) putNotificationSettings(c echo.Context, in notify.Preferences) (notify.Preferences, error) {
	return s.notify.SetPreferences(c.Request().Context(), principal(c).UserID, in)
}
