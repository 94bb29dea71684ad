package httpapi

import (
	"github.com/labstack/echo/v4"

	"github.com/ordertune/ordertune/api"
)

// openAPIPath is where the API's own description is served.
const openAPIPath = "/api/openapi.yaml"

// openAPIRoute serves api/openapi.yaml, the contract that TestSpecMatchesRoutes
// keeps in step with the registered routes. It is public: the document
// describes the API, it grants nothing.
func (s *Server) openAPIRoute() {
	f := webFile{body: api.Spec(), contentType: "application/yaml"} // RFC 9512
	f.etag = etagOf(f.body)
	s.e.GET(openAPIPath, func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderCacheControl, "no-cache")
		serveFile(c, "openapi.yaml", f)
		return nil
	})
}
