package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
)

// Query strings follow one rule: a route takes the query parameters its
// OpenAPI operation documents and no others. An unknown parameter, like
// any other problem of the query string (a bad limit or cursor, a value
// outside a filter's choices), is a 400 listing every problem; problems
// of a body are 422.

// queryProblem is the 400 answer listing every problem of a query string.
func queryProblem(errs []FieldError) *Problem {
	p := newProblem(http.StatusBadRequest, "Invalid query",
		fmt.Sprintf("the query string has %d problem(s); see errors", len(errs)))
	p.Type = problemTypeValidation
	p.Errors = errs
	return p
}

// openapiPathParam matches "{id}" in a documented path.
var openapiPathParam = regexp.MustCompile(`\{([A-Za-z0-9_]+)\}`)

// queryParams reads, from the served OpenAPI document, the query
// parameters of every operation, keyed by "METHOD /echo/:path".
func queryParams(doc []byte) (map[string][]string, error) {
	type param struct {
		Ref  string `json:"$ref"`
		Name string `json:"name"`
		In   string `json:"in"`
	}
	var d struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Parameters map[string]param `json:"parameters"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("openapi: read query parameters: %w", err)
	}
	resolve := func(p param) (param, error) {
		if p.Ref == "" {
			return p, nil
		}
		name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/")
		q, found := d.Components.Parameters[name]
		if !ok || !found {
			return param{}, fmt.Errorf("openapi: unknown parameter %s", p.Ref)
		}
		return q, nil
	}
	out := map[string][]string{}
	for path, ops := range d.Paths {
		var shared []param
		if raw, ok := ops["parameters"]; ok {
			if err := json.Unmarshal(raw, &shared); err != nil {
				return nil, fmt.Errorf("openapi: %s parameters: %w", path, err)
			}
		}
		route := openapiPathParam.ReplaceAllString(path, ":$1")
		for method, raw := range ops {
			switch method {
			case "parameters", "summary", "description", "servers":
				continue
			}
			var op struct {
				Parameters []param `json:"parameters"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				return nil, fmt.Errorf("openapi: %s %s: %w", method, path, err)
			}
			names := []string{}
			for _, p := range append(slices.Clone(shared), op.Parameters...) {
				p, err := resolve(p)
				if err != nil {
					return nil, err
				}
				if p.In == "query" && !slices.Contains(names, p.Name) {
					names = append(names, p.Name)
				}
			}
			slices.Sort(names)
			out[strings.ToUpper(method)+" "+route] = names
		}
	}
	return out, nil
}

// checkQuery refuses, with 400, a query parameter the matched route does
// not document. Routes the document does not know (there are none; a
// test holds the two in step) take no query parameters.
func (s *Server) checkQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		q := c.QueryParams()
		if len(q) == 0 {
			return next(c)
		}
		allowed := s.query[c.Request().Method+" "+c.Path()]
		var errs []FieldError
		for _, name := range sortedKeys(q) {
			if slices.Contains(allowed, name) {
				continue
			}
			takes := "takes no query parameters"
			if len(allowed) > 0 {
				takes = "takes " + strings.Join(allowed, ", ")
			}
			errs = append(errs, FieldError{Path: name, Rule: "unknown parameter",
				Message: fmt.Sprintf("unknown query parameter %q; this route %s", name, takes)})
		}
		if len(errs) > 0 {
			// Report a bad page too, in the same answer; the handler's
			// own filters are checked once the names are right.
			if slices.Contains(allowed, "limit") || slices.Contains(allowed, "cursor") {
				var prob *Problem
				if _, err := parsePage(c); errors.As(err, &prob) {
					errs = append(errs, prob.Errors...)
				}
			}
			return queryProblem(errs)
		}
		return next(c)
	}
}
