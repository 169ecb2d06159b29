package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/labstack/echo/v4"
)

// echoParam matches Echo's ":id" path parameters.
var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// TestOpenAPICoversRoutes holds the document and the router in step:
// every route Echo serves is documented, and every documented operation is
// routed.
func TestOpenAPICoversRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	b.do(t, http.MethodGet, "/api/v1/openapi.json", "", nil).mustStatus(t, http.StatusOK).json(t, &doc)

	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "parameters", "summary", "description", "servers":
				continue
			}
			documented[strings.ToUpper(method)+" "+p] = true
		}
	}
	routed := map[string]bool{}
	for _, r := range b.srv.echo.Routes() {
		if r.Method == echo.RouteNotFound || strings.HasSuffix(r.Path, "*") {
			continue // catch-alls of groups, and mounted sub-applications
		}
		routed[r.Method+" "+echoParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	for k := range routed {
		if !documented[k] {
			t.Errorf("route %s is not in the OpenAPI document", k)
		}
	}
	for k := range documented {
		if !routed[k] {
			t.Errorf("the OpenAPI document has %s, which is not routed", k)
		}
	}
	if len(routed) < 8 {
		t.Errorf("only %d routes found; the router walk is broken", len(routed))
	}
}

func TestBuildOpenAPIRefusesDuplicates(t *testing.T) {
	t.Parallel()
	base := `{"openapi":"3.0.3","paths":{"/a":{}},"components":{"schemas":{"A":{}}}}`
	tests := []struct {
		name string
		frag string
		want string // in the error; empty for success
	}{
		{"merges", `{"paths":{"/b":{}},"components":{"schemas":{"B":{}}}}`, ""},
		{"duplicate path", `{"paths":{"/a":{}}}`, `paths "/a" is defined twice`},
		{"duplicate schema", `{"components":{"schemas":{"A":{}}}}`, `components.schemas "A" is defined twice`},
		{"stray key", `{"info":{}}`, `unexpected top-level key "info"`},
		{"bad JSON", `{"paths":`, "x.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"openapi/base.json": {Data: []byte(base)},
				"openapi/x.json":    {Data: []byte(tc.frag)},
			}
			out, err := buildOpenAPI(fsys)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				var doc struct {
					Paths      map[string]any `json:"paths"`
					Components struct {
						Schemas map[string]any `json:"schemas"`
					} `json:"components"`
				}
				if err := json.Unmarshal(out, &doc); err != nil {
					t.Fatal(err)
				}
				var paths, schemas []string
				for k := range doc.Paths {
					paths = append(paths, k)
				}
				for k := range doc.Components.Schemas {
					schemas = append(schemas, k)
				}
				slices.Sort(paths)
				slices.Sort(schemas)
				if !slices.Equal(paths, []string{"/a", "/b"}) || !slices.Equal(schemas, []string{"A", "B"}) {
					t.Fatalf("merged paths %v, schemas %v", paths, schemas)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("buildOpenAPI: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestOpenAPIReferencesResolve checks that every "$ref" of the served
// document points at a definition in it and that operation IDs are
// unique, so that generated clients build.
func TestOpenAPIReferencesResolve(t *testing.T) {
	t.Parallel()
	doc, err := buildOpenAPI(openapiFS)
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(doc, &root); err != nil {
		t.Fatal(err)
	}
	resolve := func(ref string) bool {
		if !strings.HasPrefix(ref, "#/") {
			return false
		}
		var cur any = root
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			m, ok := cur.(map[string]any)
			if !ok {
				return false
			}
			if cur, ok = m[strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")]; !ok {
				return false
			}
		}
		return true
	}
	opIDs := map[string]string{}
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				switch k {
				case "$ref":
					if ref, _ := child.(string); !resolve(ref) {
						t.Errorf("%s: $ref %v does not resolve", where, child)
					}
				case "operationId":
					id, _ := child.(string)
					if prev, dup := opIDs[id]; dup {
						t.Errorf("operationId %q is used by %s and %s", id, prev, where)
					}
					opIDs[id] = where
				}
				walk(where+"/"+k, child)
			}
		case []any:
			for i, child := range v {
				walk(fmt.Sprintf("%s/%d", where, i), child)
			}
		}
	}
	walk("#", root)
	if len(opIDs) < 8 {
		t.Errorf("only %d operations found; the walk is broken", len(opIDs))
	}
}
