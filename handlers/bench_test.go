package handlers

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
)

// BenchmarkGetSummary is one authenticated GET of a campaign summary through
// the whole router (middleware, auth, handler, JSON), on the plain store
// and through the in-process cache tier.
//
//	go test ./handlers -run '^$' -bench BenchmarkGetSummary -benchmem
func BenchmarkGetSummary(b *testing.B) {
	for _, tc := range []struct {
		name   string
		cached bool
	}{{"plain", false}, {"cached", true}} {
		b.Run(tc.name, func(b *testing.B) {
			// Access logs are written, as in production, but to nowhere.
			opts := []envOpt{func(d *Deps) { d.Log = slog.New(slog.NewJSONHandler(io.Discard, nil)) }}
			if tc.cached {
				opt, _ := withCache(b, "")
				opts = append(opts, opt)
			}
			e := newEnv(b, opts...)
			_, key := e.user()
			c := e.campaign(key, 200)
			req := newRequest("GET", "/api/v1/campaigns/"+c.ID.String()+"/summary", key, nil, "")
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				rec := httptest.NewRecorder()
				e.e.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
