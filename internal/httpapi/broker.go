package httpapi

import (
	"bytes"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/trading"
)

// brokerRoutes are Settings → Broker and the admin's view of IBKR
// sessions. Every one acts on the caller's own connections: the tenant is
// the principal, never a path parameter.
func (s *Server) brokerRoutes() {
	s.api(http.MethodGet, "/broker", s.getBroker)
	s.api(http.MethodPut, "/broker/active", s.putBrokerActive)
	s.api(http.MethodPut, "/broker/:mode", s.putBroker)
	s.api(http.MethodPost, "/broker/:mode/test", s.testBroker)
	s.api(http.MethodDelete, "/broker/:mode", s.deleteBroker)
	s.api(http.MethodGet, "/admin/sessions", s.adminSessions)
}

func (s *Server) brokerService() (*broker.Service, error) {
	if s.broker == nil {
		return nil, errs.E(errs.Unavailable, "broker connections are not available on this server: ORDERTUNE_MASTER_KEYS is not set")
	}
	return s.broker, nil
}

func brokerActor(c echo.Context) broker.Actor {
	return broker.Actor{UserID: principal(c).UserID, IP: c.RealIP()}
}

// brokerForMode returns the broker service and the connection the path's
// :mode names; every per-mode route refuses in the same order.
func (s *Server) brokerForMode(c echo.Context) (*broker.Service, broker.Mode, error) {
	b, err := s.brokerService()
	if err != nil {
		return nil, "", err
	}
	mode, err := trading.ParseMode(c.Param("mode"))
	if err != nil {
		return nil, "", err
	}
	return b, mode, nil
}

func (s *Server) getBroker(c echo.Context) error {
	b, err := s.brokerService()
	if err != nil {
		return err
	}
	ov, err := b.Overview(c.Request().Context(), principal(c).UserID)
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, ov)
}

func (s *Server) putBroker(c echo.Context) error {
	b, mode, err := s.brokerForMode(c)
	if err != nil {
		return err
	}
	var in broker.Input
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	conn, err := b.Save(c.Request().Context(), principal(c).UserID, mode, in, brokerActor(c))
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, conn)
}

// testBroker tests the saved set, or the set in the body when there is
// one. A failed test is a 200 with ok false: the request itself worked.
func (s *Server) testBroker(c echo.Context) error {
	b, mode, err := s.brokerForMode(c)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return errs.E(errs.Invalid, "the request body could not be read")
	}
	var in *broker.Input
	if len(bytes.TrimSpace(body)) > 0 {
		in = new(broker.Input)
		c.Request().Body = io.NopCloser(bytes.NewReader(body))
		if err := decodeJSON(c, in); err != nil {
			return err
		}
	}
	res, err := b.Test(c.Request().Context(), principal(c).UserID, mode, in, brokerActor(c))
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, res)
}

func (s *Server) deleteBroker(c echo.Context) error {
	b, mode, err := s.brokerForMode(c)
	if err != nil {
		return err
	}
	if err := b.Delete(c.Request().Context(), principal(c).UserID, mode, brokerActor(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) putBrokerActive(c echo.Context) error {
	b, err := s.brokerService()
	if err != nil {
		return err
	}
	var req struct {
		Mode string `json:"mode"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	mode, err := trading.ParseMode(req.Mode)
	if err != nil {
		return errs.Fields("invalid request", errs.FieldError{Field: "mode", Message: "must be live or paper"})
	}
	ctx := c.Request().Context()
	u := principal(c).UserID
	if err := b.SetActive(ctx, u, mode, brokerActor(c)); err != nil {
		return err
	}
	ov, err := b.Overview(ctx, u)
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, ov)
}

// adminSessions lists every tenant's cached IBKR session: state, LST
// expiry, last tickle, competing login. Nothing secret is in it.
func (s *Server) adminSessions(c echo.Context) error {
	b, err := s.brokerService()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"items": b.Cache().States(), "next_cursor": nil})
}
