package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/packflow/packflow/tasks"
)

// isPlan reports whether a deploy request asks for its plan only
// (POST /executions/plan, POST /blueprints/{id}/deploy/plan).
func isPlan(c echo.Context) bool { return strings.HasSuffix(c.Path(), "/plan") }

// answerPlan answers a deploy request's plan: the deployment checked as
// deploy checks it, each server's steps with their commands as they would
// run (secrets masked) and every problem; nothing is recorded or run.
// errs are the problems deploy found in the request itself.
func (s *Server) answerPlan(c echo.Context, dreq tasks.DeployRequest, errs []FieldError) error {
	plan, err := tasks.PlanDeploy(c.Request().Context(), s.store, dreq)
	if err != nil {
		return err
	}
	problems := make([]tasks.Problem, 0, len(errs)+len(plan.Problems))
	for _, e := range errs {
		problems = append(problems, tasks.Problem{Path: e.Path, Rule: e.Rule, Message: e.Message})
	}
	for _, pr := range plan.Problems {
		if len(errs) > 0 && pr.Path == "servers" {
			continue // the servers were reported one by one
		}
		problems = append(problems, pr)
	}
	plan.Problems = problems
	return c.JSON(http.StatusOK, plan)
}
