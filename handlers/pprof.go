package handlers

import (
	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/internal/profiles"
)

// pprofPrefix is where net/http/pprof's handlers are served (PPROF_ENABLED),
// behind the admin key: profiles show code paths, SQL text and memory, and
// a CPU profile costs the server while it runs.
const pprofPrefix = "/debug/pprof"

// registerPprof serves the runtime profiles under /debug/pprof with the
// standard paths, so `go tool pprof` works against a running server:
//
//	curl -H "Authorization: Bearer $ADMIN_API_KEY" -o cpu.pb.gz \
//	  'http://host:8080/debug/pprof/profile?seconds=5'
//	go tool pprof -http=: cpu.pb.gz
//
// A profile's seconds must stay under REQUEST_TIMEOUT, which ends every
// request, this one included.
func registerPprof(e *echo.Echo, mw ...echo.MiddlewareFunc) {
	e.Group(pprofPrefix, mw...).Any("/*", echo.WrapHandler(profiles.Handler(pprofPrefix)))
}
