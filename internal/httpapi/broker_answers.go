package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/internal/broker"
)

// brokerAnswerRoutes are the settings of how IBKR's answers are handled:
// the user's choice when another login holds their IBKR session, and an
// admin's per-user override of the reply-question allowlist.
func (s *Server) brokerAnswerRoutes() {
	api := s.brokerAPI()
	api(http.MethodPut, "/broker/session-preference", replyTo(http.StatusOK, s.putSessionPreference))
	api(http.MethodGet, "/admin/users/:id/reply-questions", reply(http.StatusOK, s.adminGetReplyQuestions))
	api(http.MethodPut, "/admin/users/:id/reply-questions", replyTo(http.StatusOK, s.adminPutReplyQuestions))
	api(http.MethodDelete, "/admin/users/:id/reply-questions", reply(http.StatusOK, s.adminDeleteReplyQuestions))
}

// sessionPreference is PUT /broker/session-preference's body and answer.
type sessionPreference struct {
	OnCompeting string `json:"on_competing"`
}

func (s *Server) putSessionPreference(c echo.Context, req sessionPreference) (sessionPreference, error) {
	if err := s.broker.SetSessionPreference(c.Request().Context(), brokerActor(c), principal(c).UserID, req.OnCompeting); err != nil {
		return sessionPreference{}, err
	}
	noStore(c)
	return req, nil
}

func (s *Server) adminGetReplyQuestions(c echo.Context) (broker.QuestionSettings, error) {
	noStore(c)
	return s.broker.QuestionSettings(c.Request().Context(), c.Param("id"))
}

// replyQuestions is PUT /admin/users/{id}/reply-questions's body.
type replyQuestions struct {
	Allowed []string `json:"allowed"`
}

func (s *Server) adminPutReplyQuestions(c echo.Context, req replyQuestions) (broker.QuestionSettings, error) {
	if req.Allowed == nil {
		// An empty list surfaces every question; the default is DELETE.
		req.Allowed = []string{}
	}
	noStore(c)
	return s.broker.SetQuestionOverride(c.Request().Context(), brokerActor(c), c.Param("id"), req.Allowed)
}

func (s *Server) adminDeleteReplyQuestions(c echo.Context) (broker.QuestionSettings, error) {
	noStore(c)
	return s.broker.SetQuestionOverride(c.Request().Context(), brokerActor(c), c.Param("id"), nil)
}
