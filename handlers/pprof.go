package handlers

import (
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/labstack/echo/v4"
)

// pprofPrefix is where net/http/pprof's handlers are served (PPROF_ENABLED),
// behind the admin key: profiles show code paths, SQL text and memory, and
// a CPU profile costs the server while it runs.
const pprofPrefix = "/debug/pprof"

// registerPprof serves the runtime profiles under /debug/pprof with the
// standard paths, so `go tool pprof` works against a running server:
//
//	go tool pprof -http=: 'http://host/debug/pprof/profile?seconds=5' \
//	  (with the header Authorization: Bearer $ADMIN_API_KEY)
//
// A profile's seconds must stay under REQUEST_TIMEOUT, which ends every
// request, this one included.
func registerPprof(e *echo.Echo, mw ...echo.MiddlewareFunc) {
	g := e.Group(pprofPrefix, mw...)
	named := map[string]http.HandlerFunc{
		"cmdline": pprof.Cmdline,
		"profile": pprof.Profile,
		"symbol":  pprof.Symbol,
		"trace":   pprof.Trace,
	}
	g.Any("/*", func(c echo.Context) error {
		name := strings.TrimPrefix(c.Request().URL.Path, pprofPrefix+"/")
		if h, ok := named[name]; ok {
			h(c.Response(), c.Request())
			return nil
		}
		// Index serves the index page and every named runtime profile
		// (heap, allocs, goroutine, mutex, block, threadcreate).
		pprof.Index(c.Response(), c.Request())
		return nil
	})
}
