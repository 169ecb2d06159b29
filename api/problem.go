package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/packflow/packflow/store"
)

// problemContentType is the media type of every error answer (RFC 9457).
const problemContentType = "application/problem+json"

// Problem types beyond plain HTTP statuses ("about:blank").
const (
	problemTypeValidation = "urn:packflow:problem:validation"
	problemTypeNotReady   = "urn:packflow:problem:not-ready"
)

// FieldError is one problem found in a request: where, which rule, and
// what to do about it.
type FieldError struct {
	Path    string `json:"path"`
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

// Problem is an error answer. Handlers return it as an error; the server's
// error handler writes it as application/problem+json.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// Errors lists every problem found in a request, not only the first.
	Errors []FieldError `json:"errors,omitempty"`
	// RequestID repeats the X-Request-ID of the call, for support.
	RequestID string `json:"request_id,omitempty"`

	cause error // logged, never shown
}

// Error implements error.
func (p *Problem) Error() string {
	if p.cause != nil {
		return fmt.Sprintf("%d %s: %s: %v", p.Status, p.Title, p.Detail, p.cause)
	}
	return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
}

// Unwrap returns the cause recorded with withCause.
func (p *Problem) Unwrap() error { return p.cause }

// withCause records err as the cause of p, for the log.
func (p *Problem) withCause(err error) *Problem {
	p.cause = err
	return p
}

// newProblem returns a problem with status, title (a short summary that
// does not change between occurrences) and detail (this occurrence).
func newProblem(status int, title, detail string) *Problem {
	if title == "" {
		title = http.StatusText(status)
	}
	return &Problem{Type: "about:blank", Title: title, Status: status, Detail: detail}
}

// validationProblem returns a 422 listing every problem in errs.
func validationProblem(errs []FieldError) *Problem {
	p := newProblem(http.StatusUnprocessableEntity, "Invalid request",
		fmt.Sprintf("the request has %d problem(s); see errors", len(errs)))
	p.Type = problemTypeValidation
	p.Errors = errs
	return p
}

// notFound is the answer for a missing object and for one the caller may
// not see: the two are never told apart.
func notFound(what string) *Problem {
	return newProblem(http.StatusNotFound, "", what+" not found")
}

// problemFor turns any error a handler returned into the Problem to write.
func problemFor(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return newProblem(http.StatusRequestEntityTooLarge, "",
			fmt.Sprintf("the request body is larger than %d bytes", tooLarge.Limit)).withCause(err)
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		detail := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok && m != "" {
			detail = m
		}
		if he.Code >= 500 {
			detail = "internal error"
		}
		return newProblem(he.Code, "", detail).withCause(err)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return newProblem(http.StatusNotFound, "", "not found").withCause(err)
	case errors.Is(err, store.ErrConflict):
		return newProblem(http.StatusConflict, "", publicText(err.Error())).withCause(err)
	case errors.Is(err, store.ErrInvalid):
		return newProblem(http.StatusUnprocessableEntity, "", publicText(err.Error())).withCause(err)
	}
	return newProblem(http.StatusInternalServerError, "", "internal error").withCause(err)
}

// handleError is the server's one echo.HTTPErrorHandler.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p := problemFor(err)
	p.public()
	if p.RequestID == "" {
		p.RequestID = requestID(c)
	}
	log := s.log(c)
	if p.Status >= 500 {
		log.Error("request failed", "status", p.Status, "err", err)
	} else if p.cause != nil {
		log.Debug("request refused", "status", p.Status, "err", err)
	}
	if p.Status == http.StatusUnauthorized && c.Response().Header().Get(echo.HeaderWWWAuthenticate) == "" {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="packflow"`)
	}
	c.Response().Header().Set(echo.HeaderContentType, problemContentType)
	var werr error
	if c.Request().Method == http.MethodHead {
		werr = c.NoContent(p.Status)
	} else {
		werr = c.JSON(p.Status, p)
	}
	if werr != nil {
		log.Debug("write error answer", "err", werr)
	}
}
