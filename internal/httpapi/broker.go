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
	api := s.brokerAPI()
	api(http.MethodGet, "/broker", reply(http.StatusOK, s.getBroker))
	api(http.MethodPut, "/broker/active", replyTo(http.StatusOK, s.putBrokerActive))
	api(http.MethodPut, "/broker/:mode", reply(http.StatusOK, s.putBroker))
	api(http.MethodPost, "/broker/:mode/test", reply(http.StatusOK, s.testBroker))
	api(http.MethodDelete, "/broker/:mode", done(s.deleteBroker))
	api(http.MethodGet, "/admin/sessions", s.adminSessions)
}

// brokerAPI registers the routes that need the broker service, which a
// server without a master key does not have.
func (s *Server) brokerAPI() func(method, path string, h echo.HandlerFunc) {
	return s.apiOf(s.broker != nil, "broker connections are not available on this server: ORDERTUNE_MASTER_KEYS is not set")
}

func brokerActor(c echo.Context) broker.Actor {
	return broker.Actor{UserID: principal(c).UserID, IP: c.RealIP()}
}

// pathMode returns the connection the path's :mode names.
func pathMode(c echo.Context) (broker.Mode, error) {
	return trading.ParseMode(c.Param("mode"))
}

func (s *Server) getBroker(c echo.Context) (broker.Overview, error) {
	noStore(c)
	return s.broker.Overview(c.Request().Context(), principal(c).UserID)
}

func (s *Server) putBroker(c echo.Context) (*broker.Connection, error) {
	mode, err := pathMode(c)
	if err != nil {
		return nil, err
	}
	var in broker.Input
	if err := decodeJSON(c, &in); err != nil {
		return nil, err
	}
	noStore(c)
	return s.broker.Save(c.Request().Context(), principal(c).UserID, mode, in, brokerActor(c))
}

// testBroker tests the saved set, or the set in the body when there is
// one. A failed test is a 200 with ok false: the request itself worked.
func (s *Server) testBroker(c echo.Context) (broker.TestResult, error) {
	mode, err := pathMode(c)
	if err != nil {
		return broker.TestResult{}, err
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return broker.TestResult{}, errs.E(errs.Invalid, "the request body could not be read")
	}
	var in *broker.Input
	if len(bytes.TrimSpace(body)) > 0 {
		in = new(broker.Input)
		c.Request().Body = io.NopCloser(bytes.NewReader(body))
		if err := decodeJSON(c, in); err != nil {
			return broker.TestResult{}, err
		}
	}
	noStore(c)
	return s.broker.Test(c.Request().Context(), principal(c).UserID, mode, in, brokerActor(c))
}

func (s *Server) deleteBroker(c echo.Context) error {
	mode, err := pathMode(c)
	if err != nil {
		return err
	}
	return s.broker.Delete(c.Request().Context(), principal(c).UserID, mode, brokerActor(c))
}

// activeBroker is PUT /broker/active's body.
type activeBroker struct {
	Mode string `json:"mode"`
}

func (s *Server) putBrokerActive(c echo.Context, req activeBroker) (broker.Overview, error) {
	mode, err := trading.ParseMode(req.Mode)
	if err != nil {
		return broker.Overview{}, errs.Fields("invalid request", errs.FieldError{Field: "mode", Message: "must be live or paper"})
	}
	if mode == broker.Live {
		if err := s.requireStepUp(c); err != nil {
			return broker.Overview{}, err
		}
	}
	ctx := c.Request().Context()
	u := principal(c).UserID
	if err := s.broker.SetActive(ctx, u, mode, brokerActor(c)); err != nil {
		return broker.Overview{}, err
	}
	noStore(c)
	return s.broker.Overview(ctx, u)
}

// adminSessions lists every tenant's cached IBKR session: state, LST
// expiry, last tickle, competing login. Nothing secret is in it.
func (s *Server) adminSessions(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"items": s.broker.Cache().States(), "next_cursor": nil})
}
