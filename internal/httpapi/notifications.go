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
	s.notifyRoute(http.MethodGet, "/notifications", s.listNotifications)
	s.notifyRoute(http.MethodPost, "/notifications/read-all", s.readAllNotifications)
	s.notifyRoute(http.MethodPost, "/notifications/:id/read", s.readNotification)
	s.notifyRoute(http.MethodGet, "/settings/notifications", s.getNotificationSettings)
	s.notifyRoute(http.MethodPut, "/settings/notifications", s.putNotificationSettings)

	s.notifyRoute(http.MethodGet, "/webhooks", s.listWebhooks)
	s.notifyRoute(http.MethodPost, "/webhooks", s.createWebhook)
	s.notifyRoute(http.MethodDelete, "/webhooks/:id", s.deleteWebhook)
	s.notifyRoute(http.MethodPost, "/webhooks/:id/test", s.testWebhook)
	s.notifyRoute(http.MethodGet, "/webhooks/:id/deliveries", s.webhookDeliveries)
}

// notifyRoute registers a route that answers 503 while notifications are
// not configured on this server.
func (s *Server) notifyRoute(method, path string, h echo.HandlerFunc) {
	s.api(method, path, func(c echo.Context) error {
		if s.notify == nil {
			return errs.E(errs.Unavailable, "notifications are not configured on this server")
		}
		return h(c)
	})
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
