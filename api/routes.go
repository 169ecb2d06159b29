package api

import "github.com/labstack/echo/v4"

// routes registers every route. Topics add one call each to the /api/v1
// group below and document their routes in their own openapi/ fragment.
func (s *Server) routes(e *echo.Echo) {
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.serveMetrics())
	// Public: the API's own description and the manifest schema.
	e.GET("/api/v1/openapi.json", s.serveOpenAPI)
	e.GET("/api/v1/schema/package.manifest.xsd", s.serveManifestSchema)
	// The queue monitor, for admins of the root account.
	s.monitorRoutes(e)

	g := e.Group("/api/v1", s.authenticate, s.checkQuery)
	s.accountRoutes(g)
	s.tokenRoutes(g)
	s.opsRoutes(g)
	s.packageRoutes(g)
	s.credentialRoutes(g)
	s.serverRoutes(g)
	s.networkRoutes(g)
	s.blueprintRoutes(g)
	s.executionRoutes(g)
	s.installRoutes(g)
	s.scheduleRoutes(g)
}
