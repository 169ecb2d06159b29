package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"
)

func TestPaginateWalksEveryItemOnce(t *testing.T) {
	t.Parallel()
	var items []string
	for i := range 23 {
		items = append(items, fmt.Sprintf("id-%02d", i))
	}
	id := func(s string) string { return s }
	for _, limit := range []int{1, 5, 22, 23, 500} {
		var got []string
		req := pageRequest{Limit: limit}
		for pages := 0; ; pages++ {
			if pages > len(items) {
				t.Fatalf("limit %d: pagination does not end", limit)
			}
			pg := paginate(items, req, id)
			if len(pg.Items) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(pg.Items))
			}
			got = append(got, pg.Items...)
			if pg.NextCursor == "" {
				break
			}
			c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/?limit="+fmt.Sprint(limit)+"&cursor="+pg.NextCursor, nil), httptest.NewRecorder())
			var err error
			if req, err = parsePage(c); err != nil {
				t.Fatal(err)
			}
		}
		if diff := cmp.Diff(items, got); diff != "" {
			t.Errorf("limit %d (-want +got):\n%s", limit, diff)
		}
	}
	if pg := paginate([]string(nil), pageRequest{Limit: 5}, id); pg.Items == nil || pg.NextCursor != "" {
		t.Errorf("empty list pages as %+v; want [] and no cursor", pg)
	}
}

func TestParsePage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query string
		want  pageRequest
		bad   []string
	}{
		{"", pageRequest{Limit: 50}, nil},
		{"limit=500", pageRequest{Limit: 500}, nil},
		{"limit=7&cursor=aWQtMDM", pageRequest{Limit: 7, After: "id-03", Cursor: "aWQtMDM"}, nil},
		{"limit=0", pageRequest{}, []string{"limit"}},
		{"limit=501", pageRequest{}, []string{"limit"}},
		{"limit=ten&cursor=!!", pageRequest{}, []string{"limit", "cursor"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/?"+tc.query, nil), httptest.NewRecorder())
			got, err := parsePage(c)
			if tc.bad == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Errorf("got %+v, want %+v", got, tc.want)
				}
				return
			}
			p := problemFor(err)
			var paths []string
			for _, e := range p.Errors {
				paths = append(paths, e.Path)
			}
			if p.Status != http.StatusBadRequest || !cmp.Equal(paths, tc.bad) {
				t.Errorf("got %d %v, want 400 %v", p.Status, paths, tc.bad)
			}
		})
	}
}
