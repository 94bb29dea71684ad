package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/notify"
)

func (s *Server) listWebhooks(c echo.Context) error {
	eps, err := s.notify.Endpoints(c.Request().Context(), principal(c).UserID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newPage(eps, ""))
}

// createWebhook answers the new endpoint with its secret, the only time the
// secret is shown; the response must not be cached.
func (s *Server) createWebhook(c echo.Context) error {
	var in notify.NewEndpoint
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	ep, err := s.notify.CreateEndpoint(c.Request().Context(), principal(c).UserID, in)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, ep)
}

func (s *Server) deleteWebhook(c echo.Context) error {
	if err := s.notify.DeleteEndpoint(c.Request().Context(), principal(c).UserID, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) testWebhook(c echo.Context) error {
	id, err := s.notify.TestEndpoint(c.Request().Context(), principal(c).UserID, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]string{"event_id": id})
}

func (s *Server) webhookDeliveries(c echo.Context) error {
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	ds, err := s.notify.Deliveries(c.Request().Context(), principal(c).UserID, c.Param("id"), limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newPage(ds, ""))
}
