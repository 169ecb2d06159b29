package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/packflow/packflow/manifest"
)

// serveManifestSchema answers GET /api/v1/schema/package.manifest.xsd,
// without authentication: editors and CI fetch it to check manifests.
func (s *Server) serveManifestSchema(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderCacheControl, "public, max-age=3600")
	return c.Blob(http.StatusOK, "application/xml; charset=utf-8", manifest.Schema())
}
