package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/packflow/packflow/store"
)

// Point 22: names with NUL, line breaks or only spaces are refused; a
// blueprint has at most store.MaxBlueprintSteps steps.
func TestNamesAndSizes(t *testing.T) {
	t.Parallel()
	b := setupSchedules(t)
	for _, bad := range []string{"a\x00b", "a\nb", "   ", "\t", " lead"} {
		p := b.do(t, http.MethodPost, "/api/v1/tokens", testAdminToken, map[string]any{"user": bad, "role": "viewer"}).
			mustStatus(t, http.StatusUnprocessableEntity).problem(t)
		if got := sortedPaths(p); !slices.Equal(got, []string{"user"}) {
			t.Errorf("user %q: paths %v", bad, got)
		}
		p = b.do(t, http.MethodPost, "/api/v1/accounts", testAdminToken, map[string]any{"name": bad}).
			mustStatus(t, http.StatusUnprocessableEntity).problem(t)
		if got := sortedPaths(p); !slices.Equal(got, []string{"name"}) {
			t.Errorf("account %q: paths %v", bad, got)
		}
		if _, err := b.store.CreateAccount(context.Background(), store.Account{Name: bad, Parent: store.RootAccountID}); err == nil {
			t.Errorf("the store took account name %q", bad)
		}
	}
	publishAgent(t, b)
	steps := func(n int) map[string]any {
		s := make([]any, n)
		for i := range s {
			s[i] = map[string]any{"package": schedPkg, "version": "1.0.0"}
		}
		return map[string]any{"name": fmt.Sprintf("bp-%d", n), "steps": s}
	}
	b.do(t, http.MethodPost, "/api/v1/blueprints", testAdminToken, steps(store.MaxBlueprintSteps)).mustStatus(t, http.StatusCreated)
	for _, n := range []int{store.MaxBlueprintSteps + 1, 12000} {
		p := b.do(t, http.MethodPost, "/api/v1/blueprints", testAdminToken, steps(n)).mustStatus(t, http.StatusUnprocessableEntity).problem(t)
		if got := sortedPaths(p); !slices.Equal(got, []string{"steps"}) {
			t.Errorf("%d steps: paths %v", n, got)
		}
	}
}
