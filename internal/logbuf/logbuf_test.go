package logbuf

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer the test can read while the flusher writes.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *syncBuffer) snapshot() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String(), s.writes
}

func TestWriterBatchesAndFlushes(t *testing.T) {
	cases := []struct {
		name      string
		level     slog.Level
		immediate bool // written before Handle returns
	}{
		{"info waits for the interval", slog.LevelInfo, false},
		{"warn is written at once", slog.LevelWarn, true},
		{"error is written at once", slog.LevelError, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := &syncBuffer{}
			w := New(out, 64<<10, time.Hour) // the ticker never fires here
			log := slog.New(FlushAt(slog.NewJSONHandler(w, nil), w, slog.LevelWarn)).With("app", "rr")
			for i := range 100 {
				log.Info("request", "i", i)
			}
			if got, _ := out.snapshot(); got != "" {
				t.Fatalf("info lines written before any flush: %.100q", got)
			}
			log.Log(t.Context(), tc.level, "event")
			got, writes := out.snapshot()
			if tc.immediate != strings.Contains(got, `"msg":"event"`) {
				t.Fatalf("immediate=%v, output %.200q", tc.immediate, got)
			}
			if tc.immediate && writes != 1 {
				t.Fatalf("%d writes for 101 lines, want 1", writes)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, _ = out.snapshot()
			if n := strings.Count(got, "\n"); n != 101 || !strings.Contains(got, `"app":"rr"`) {
				t.Fatalf("%d lines after Close, want 101: %.200q", n, got)
			}
		})
	}
}

// TestJSONLines: only a plain JSON handler takes caller-encoded lines, and
// they follow Handle's flushing rules.
func TestJSONLines(t *testing.T) {
	type lineWriter interface {
		WriteJSONLine(slog.Level, []byte) error
	}
	w := New(io.Discard, 4096, time.Hour)
	defer w.Close()
	takes := []struct {
		name string
		h    slog.Handler
		want bool
	}{
		{"json", FlushAt(slog.NewJSONHandler(w, nil), w, slog.LevelWarn), true},
		{"text", FlushAt(slog.NewTextHandler(w, nil), w, slog.LevelWarn), false},
		{"json with attributes", FlushAt(slog.NewJSONHandler(w, nil), w, slog.LevelWarn).WithAttrs([]slog.Attr{slog.String("app", "rr")}), false},
		{"json in a group", FlushAt(slog.NewJSONHandler(w, nil), w, slog.LevelWarn).WithGroup("g"), false},
	}
	for _, tc := range takes {
		if _, ok := tc.h.(lineWriter); ok != tc.want {
			t.Errorf("%s: takes JSON lines %v, want %v", tc.name, ok, tc.want)
		}
	}
	for _, tc := range []struct {
		level     slog.Level
		immediate bool
	}{{slog.LevelInfo, false}, {slog.LevelError, true}} {
		out := &syncBuffer{}
		w := New(out, 64<<10, time.Hour)
		h := FlushAt(slog.NewJSONHandler(w, nil), w, slog.LevelWarn).(lineWriter)
		if err := h.WriteJSONLine(tc.level, []byte("{\"msg\":\"x\"}\n")); err != nil {
			t.Fatal(err)
		}
		if got, _ := out.snapshot(); (got != "") != tc.immediate {
			t.Errorf("%v: written at once %v, want %v", tc.level, got != "", tc.immediate)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got, _ := out.snapshot(); got != "{\"msg\":\"x\"}\n" {
			t.Errorf("%v: after Close %q", tc.level, got)
		}
	}
}

func TestWriterFlushesEveryInterval(t *testing.T) {
	out := &syncBuffer{}
	w := New(out, 64<<10, 10*time.Millisecond)
	defer w.Close()
	if _, err := w.Write([]byte("line\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, _ := out.snapshot(); got == "line\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the line was not flushed by the interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkAccessLogLine is one access-log line (the attributes the router
// logs) written to a pipe, as stderr is under a process supervisor, straight
// and through a Writer.
//
//	go test ./internal/logbuf -run '^$' -bench AccessLogLine -benchmem
func BenchmarkAccessLogLine(b *testing.B) {
	for _, buffered := range []bool{false, true} {
		name := "direct"
		if buffered {
			name = "buffered"
		}
		b.Run(name, func(b *testing.B) {
			r, w, err := os.Pipe()
			if err != nil {
				b.Fatal(err)
			}
			drained := make(chan struct{})
			go func() { _, _ = io.Copy(io.Discard, r); close(drained) }()
			var out io.Writer = w
			var lw *Writer
			if buffered {
				lw = New(w, 64<<10, 200*time.Millisecond)
				out = lw
			}
			log := slog.New(slog.NewJSONHandler(out, nil))
			attrs := []slog.Attr{
				slog.String("request_id", "0b6a7a52-58a3-4a53-9d3e-2f0f6f3e9c1a"), slog.String("method", "GET"),
				slog.String("path", "/api/v1/campaigns/0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b"), slog.String("route", "/api/v1/campaigns/:id"),
				slog.Int("status", 200), slog.Int64("bytes", 236), slog.Int64("latency_us", 2310), slog.String("ip", "127.0.0.1"),
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					log.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
				}
			})
			b.StopTimer()
			if lw != nil {
				_ = lw.Close()
			}
			w.Close()
			<-drained
		})
	}
}
