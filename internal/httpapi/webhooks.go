package httpapi

import (
	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/notify"
)

func (s *Server) listWebhooks(c echo.Context) (page[notify.Endpoint], error) {
	eps, err := s.notify.Endpoints(c.Request().Context(), principal(c).UserID)
	if err != nil {
		return page[notify.Endpoint]{}, err
	}
	return newPage(eps, ""), nil
}

// createWebhook answers the new endpoint with its secret, the only time the
// secret is shown; the response must not be cached.
func (s *Server) createWebhook(c echo.Context, in notify.NewEndpoint) (notify.Endpoint, error) {
	noStore(c)
	return s.notify.CreateEndpoint(c.Request().Context(), principal(c).UserID, in)
}

func (s *Server) deleteWebhook(c echo.Context) error {
	return s.notify.DeleteEndpoint(c.Request().Context(), principal(c).UserID, c.Param("id"))
}

// testWebhook sends the endpoint a test event: 202, since it is delivered
// later, like every event; the answer names the event.
func (s *Server) testWebhook(c echo.Context) (map[string]string, error) {
	id, err := s.notify.TestEndpoint(c.Request().Context(), principal(c).UserID, c.Param("id"))
	if err != nil {
		return nil, err
	}
	return map[string]string{"event_id": id}, nil
}

func (s *Server) webhookDeliveries(c echo.Context) (page[notify.Delivery], error) {
	limit, err := queryLimit(c)
	if err != nil {
		return page[notify.Delivery]{}, err
	}
	ds, err := s.notify.Deliveries(c.Request().Context(), principal(c).UserID, c.Param("id"), limit)
	if err != nil {
		return page[notify.Delivery]{}, err
	}
	return newPage(ds, ""), nil
}
