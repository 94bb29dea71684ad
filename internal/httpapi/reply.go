package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// Most handlers call one service method and answer what it returns. The
// adapters below let such a handler say only that: it returns its answer,
// and the route's registration names the status. An error goes on to the
// error handler (handleError), as from any handler.

// reply adapts h, which returns what to answer: JSON with status.
func reply[T any](status int, h func(c echo.Context) (T, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		v, err := h(c)
		if err != nil {
			return err
		}
		return c.JSON(status, v)
	}
}

// replyTo is reply for a handler of a JSON body: the body is decoded into
// an In (decodeJSON) before h runs.
func replyTo[In, Out any](status int, h func(c echo.Context, in In) (Out, error)) echo.HandlerFunc {
	return reply(status, func(c echo.Context) (Out, error) {
		var in In
		if err := decodeJSON(c, &in); err != nil {
			var none Out
			return none, err
		}
		return h(c, in)
	})
}

// done adapts h, which has nothing to answer: 204 No Content.
func done(h func(c echo.Context) error) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := h(c); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}
