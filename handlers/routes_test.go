package handlers

import (
	"net/http"
	"testing"

	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/monitor"
	"github.com/replyrocket/replyrocket/internal/ratelimit"
)

// The route table is where a route's cost, body limit, stats surcharge and
// feature gate are written: each user route names its cost, and the other
// facts stay on the routes they make sense for.
func TestRouteEntriesCarryTheirFacts(t *testing.T) {
	for _, r := range docRoutes() {
		name := r.method + " " + r.path
		switch {
		case r.auth == authUser && r.cost <= 0:
			t.Errorf("%s: a user route without a cost", name)
		case r.auth != authUser && r.cost != 0:
			t.Errorf("%s: a cost on a route no key's budget pays", name)
		case r.statsSurcharge && (r.auth != authUser || r.method != http.MethodGet):
			t.Errorf("%s: a stats surcharge on a route that is not a user's read", name)
		case r.bodyLimit != "" && r.method == http.MethodGet:
			t.Errorf("%s: a body limit on a GET", name)
		}
	}
}

// A route gated on a dependency is served only with it; every route is
// served when all are wired in.
func TestRoutesGatedOnTheirDependency(t *testing.T) {
	all := Deps{Monitor: new(monitor.Monitor), Cache: new(cache.Cache), RateLimiter: new(ratelimit.Limiter)}
	for _, tc := range []struct {
		f    feature
		d    Deps
		want bool
	}{
		{always, Deps{}, true},
		{needsMonitor, Deps{}, false},
		{needsCache, Deps{}, false},
		{needsRateLimiter, Deps{}, false},
		{needsMonitor, all, true},
		{needsCache, all, true},
		{needsRateLimiter, all, true},
	} {
		if got := tc.f.servedBy(tc.d); got != tc.want {
			t.Errorf("feature %d served by %+v: %v, want %v", tc.f, tc.d, got, tc.want)
		}
	}
}
