package api

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"slices"

	"github.com/labstack/echo/v4"
)

// openapiFS holds base.json and one fragment per topic.
//
//go:embed openapi/*.json
var openapiFS embed.FS

// openapiBase is the fragment that holds everything but topic paths.
const openapiBase = "base.json"

// buildOpenAPI assembles the served document: base.json, into which every
// other fragment's "paths" and "components" sections are merged. A path,
// or a component of a kind, defined twice is an error, as is any other
// top-level key in a fragment.
func buildOpenAPI(fsys fs.FS) ([]byte, error) {
	files, err := fs.Glob(fsys, "openapi/*.json")
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	slices.Sort(files)
	var doc map[string]any
	if err := readJSON(fsys, path.Join("openapi", openapiBase), &doc); err != nil {
		return nil, err
	}
	paths := ensureObject(doc, "paths")
	components := ensureObject(doc, "components")
	for _, f := range files {
		if path.Base(f) == openapiBase {
			continue
		}
		var frag map[string]any
		if err := readJSON(fsys, f, &frag); err != nil {
			return nil, err
		}
		for k, v := range frag {
			switch k {
			case "paths":
				if err := mergeInto(paths, v, f, "paths"); err != nil {
					return nil, err
				}
			case "components":
				kinds, ok := v.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("openapi: %s: components must be an object", f)
				}
				for kind, defs := range kinds {
					if err := mergeInto(ensureObject(components, kind), defs, f, "components."+kind); err != nil {
						return nil, err
					}
				}
			default:
				return nil, fmt.Errorf("openapi: %s: unexpected top-level key %q (fragments hold paths and components only)", f, k)
			}
		}
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("openapi: encode: %w", err)
	}
	return out, nil
}

func readJSON(fsys fs.FS, name string, v any) error {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return fmt.Errorf("openapi: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("openapi: %s: %w", name, err)
	}
	return nil
}

// ensureObject returns m[key] as an object, creating it when absent.
func ensureObject(m map[string]any, key string) map[string]any {
	if o, ok := m[key].(map[string]any); ok {
		return o
	}
	o := map[string]any{}
	m[key] = o
	return o
}

func mergeInto(dst map[string]any, src any, file, section string) error {
	obj, ok := src.(map[string]any)
	if !ok {
		return fmt.Errorf("openapi: %s: %s must be an object", file, section)
	}
	for k, v := range obj {
		if _, dup := dst[k]; dup {
			return fmt.Errorf("openapi: %s: %s %q is defined twice", file, section, k)
		}
		dst[k] = v
	}
	return nil
}

// serveOpenAPI answers GET /api/v1/openapi.json.
func (s *Server) serveOpenAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, s.openapi)
}
