package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// brokerAnswerRoutes are the settings of how IBKR's answers are handled:
// the user's choice when another login holds their IBKR session, and an
// admin's per-user override of the reply-question allowlist.
func (s *Server) brokerAnswerRoutes() {
	api := s.brokerAPI()
	api(http.MethodPut, "/broker/session-preference", s.putSessionPreference)
	api(http.MethodGet, "/admin/users/:id/reply-questions", s.adminGetReplyQuestions)
	api(http.MethodPut, "/admin/users/:id/reply-questions", s.adminPutReplyQuestions)
	api(http.MethodDelete, "/admin/users/:id/reply-questions", s.adminDeleteReplyQuestions)
}

// sessionPreference is PUT /broker/session-preference's body and answer.
type sessionPreference struct {
	OnCompeting string `json:"on_competing"`
}

func (s *Server) putSessionPreference(c echo.Context) error {
	var req sessionPreference
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.broker.SetSessionPreference(c.Request().Context(), brokerActor(c), principal(c).UserID, req.OnCompeting); err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, req)
}

func (s *Server) adminGetReplyQuestions(c echo.Context) error {
	qs, err := s.broker.QuestionSettings(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, qs)
}

func (s *Server) adminPutReplyQuestions(c echo.Context) error {
	var req struct {
		Allowed []string `json:"allowed"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Allowed == nil {
		// An empty list surfaces every question; the default is DELETE.
		req.Allowed = []string{}
	}
	qs, err := s.broker.SetQuestionOverride(c.Request().Context(), brokerActor(c), c.Param("id"), req.Allowed)
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, qs)
}

func (s *Server) adminDeleteReplyQuestions(c echo.Context) error {
	qs, err := s.broker.SetQuestionOverride(c.Request().Context(), brokerActor(c), c.Param("id"), nil)
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, qs)
}
