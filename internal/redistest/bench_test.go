package redistest

import (
	"context"
	"testing"

	"github.com/replyrocket/replyrocket/internal/dockercheck"
)

// BenchmarkStartStop measures what one redistest.Start costs a test on each
// backend (start, first PING, shut down), which decides whether per-test
// servers stay affordable as the cache suite grows.
func BenchmarkStartStop(b *testing.B) {
	backends := []struct {
		name  string
		ready func(ctx context.Context) error
		start func(ctx context.Context, b *testing.B) (backend, error)
	}{
		{"local", func(context.Context) error { _, err := lookRedisServer(); return err },
			func(ctx context.Context, b *testing.B) (backend, error) {
				bin, err := lookRedisServer()
				if err != nil {
					return nil, err
				}
				return startLocal(ctx, bin, b.TempDir())
			}},
		{"container", dockercheck.Ping,
			func(ctx context.Context, _ *testing.B) (backend, error) { return startContainer(ctx, image()) }},
	}
	for _, bc := range backends {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			if err := bc.ready(ctx); err != nil {
				b.Skipf("%s backend unavailable: %v", bc.name, err)
			}
			for b.Loop() {
				srv, err := bc.start(ctx, b)
				if err != nil {
					b.Fatalf("start: %v", err)
				}
				if err := waitReady(ctx, srv.addr(), nil); err != nil {
					b.Fatalf("ready: %v", err)
				}
				if err := srv.close(ctx); err != nil {
					b.Fatalf("close: %v", err)
				}
			}
		})
	}
}
