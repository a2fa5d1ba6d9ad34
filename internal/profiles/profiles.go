// Package profiles serves the Go runtime's profiles over HTTP with
// net/http/pprof's standard paths, so `go tool pprof` works against a
// running server; the API (PPROF_ENABLED, behind the admin key) and the
// load benchmark's bare reference server both serve them through Handler.
package profiles

import (
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
	"sync"
)

// Sampling of the contention profiles while a block or mutex?seconds=N
// request runs: blocking events of at least blockRateNanos (shorter ones
// in proportion), one contention event in mutexFraction. Outside such a
// request both are off: sampling every blocked channel or pool wait costs
// about 5 % of CPU under load (measured with the loadtest), too much to
// leave on in production.
const (
	blockRateNanos = 10_000
	mutexFraction  = 100
)

// Handler serves the profiles under prefix (e.g. "/debug/pprof"): the
// named handlers (cmdline, profile, symbol, trace), and the index page and
// every named runtime profile (heap, allocs, goroutine, mutex, block,
// threadcreate) through pprof.Index. A profile's seconds must stay under
// the server's own timeouts.
func Handler(prefix string) http.Handler {
	named := map[string]http.HandlerFunc{
		"cmdline": pprof.Cmdline,
		"profile": pprof.Profile,
		"symbol":  pprof.Symbol,
		"trace":   pprof.Trace,
	}
	var contention contentionSampling
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, prefix+"/")
		if h, ok := named[name]; ok {
			h(w, r)
			return
		}
		if (name == "block" || name == "mutex") && r.URL.Query().Get("seconds") != "" {
			defer contention.start(name)()
		}
		pprof.Index(w, r)
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
