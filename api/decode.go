package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
)

// decodeJSON reads the request body as one JSON value into v. Unknown
// fields are refused, so that a misspelt field is not silently ignored. A
// body over the limit gives 413; bad JSON, 400.
func decodeJSON(c echo.Context, v any) error {
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if dec.More() {
			return newProblem(http.StatusBadRequest, "Malformed JSON", "the body holds more than one JSON value")
		}
		return nil
	}
	var tooLarge *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.Is(err, io.EOF):
		return newProblem(http.StatusBadRequest, "Malformed JSON", "the request body is empty; a JSON object is expected")
	case errors.As(err, &typeErr):
		return validationProblem([]FieldError{{
			Path:    typeErr.Field,
			Rule:    "type",
			Message: fmt.Sprintf("must be a JSON %s, not %s", typeErr.Type.Kind(), typeErr.Value),
		}})
	case errors.As(err, &syntaxErr):
		return newProblem(http.StatusBadRequest, "Malformed JSON",
			fmt.Sprintf("invalid JSON at byte %d: %v", syntaxErr.Offset, err))
	}
	return newProblem(http.StatusBadRequest, "Malformed JSON", err.Error()).withCause(err)
}
