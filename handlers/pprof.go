package handlers

import (
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

// pprofPrefix is where net/http/pprof's handlers are served (PPROF_ENABLED),
// behind the admin key: profiles show code paths, SQL text and memory, and
// a CPU profile costs the server while it runs.
const pprofPrefix = "/debug/pprof"

// Sampling of the contention profiles while a /debug/pprof/block or
// /mutex?seconds=N request runs: blocking events of at least
// blockRateNanos (shorter ones in proportion), one contention event in
// mutexFraction. Outside such a request both are off: sampling every
// blocked channel or pool wait costs about 5 % of CPU under load (measured
// with the loadtest), too much to leave on in production.
const (
	blockRateNanos = 10_000
	mutexFraction  = 100
)

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
	g := e.Group(pprofPrefix, mw...)
	named := map[string]http.HandlerFunc{
		"cmdline": pprof.Cmdline,
		"profile": pprof.Profile,
		"symbol":  pprof.Symbol,
		"trace":   pprof.Trace,
	}
	var contention contentionSampling
	g.Any("/*", func(c echo.Context) error {
		name := strings.TrimPrefix(c.Request().URL.Path, pprofPrefix+"/")
		if h, ok := named[name]; ok {
			h(c.Response(), c.Request())
			return nil
		}
		if (name == "block" || name == "mutex") && c.QueryParam("seconds") != "" {
			defer contention.start(name)()
		}
		// Index serves the index page and every named runtime profile
		// (heap, allocs, goroutine, mutex, block, threadcreate).
		pprof.Index(c.Response(), c.Request())
		return nil
	})
}

// contentionSampling turns the block or mutex profile on while at least
// one request for it runs.
type contentionSampling struct {
	mu      sync.Mutex
	running map[string]int
}

func (s *contentionSampling) start(name string) (stop func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == nil {
		s.running = map[string]int{}
	}
	if s.running[name] == 0 {
		setContentionRate(name, true)
	}
	s.running[name]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.running[name]--
		if s.running[name] == 0 {
			setContentionRate(name, false)
		}
	}
}

func setContentionRate(name string, on bool) {
	switch name {
	case "block":
		rate := 0
		if on {
			rate = blockRateNanos
		}
		runtime.SetBlockProfileRate(rate)
	case "mutex":
		frac := 0
		if on {
			frac = mutexFraction
		}
		runtime.SetMutexProfileFraction(frac)
	}
}
