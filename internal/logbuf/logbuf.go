// Package logbuf batches log output into fewer write system calls. The
// server writes one access-log line per request; written straight to
// stderr that is one write(2) per request, about a tenth of the CPU of an
// uncached API request (measured with cmd/loadtest, see
// docs/decisions/0008-batched-access-log.md). Lines are buffered and written together every interval or
// when the buffer fills; warnings and errors are written at once, so a
// problem is never held back, and Close writes what is left.
package logbuf

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Writer is a buffered io.Writer, safe for concurrent use, flushed every
// interval by its own goroutine until Close.
type Writer struct {
	mu   sync.Mutex
	bw   *bufio.Writer
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// New returns a Writer on w with a buffer of size bytes, flushed every
// interval.
func New(w io.Writer, size int, interval time.Duration) *Writer {
	lw := &Writer{bw: bufio.NewWriterSize(w, size), stop: make(chan struct{}), done: make(chan struct{})}
	go lw.flushEvery(interval)
	return lw
}

func (w *Writer) flushEvery(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			_ = w.Flush()
		}
	}
}

// Write buffers p; a p larger than the free space is written through.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bw.Write(p)
}

// Flush writes what is buffered.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bw.Flush()
}

// Close stops the flusher and writes what is left. Writes after Close are
// still accepted and buffered, but only a Flush writes them.
func (w *Writer) Close() error {
	w.once.Do(func() { close(w.stop) })
	<-w.done
	return w.Flush()
}

// FlushAt wraps h, which writes to w, so that a record at level or above
// is written out before Handle returns.
//
// When h is a *slog.JSONHandler, the wrapper also takes whole lines that a
// caller has encoded exactly as h would (WriteJSONLine): the access log
// writes its one line per request so, without slog's record and attribute
// machinery, the larger part of a cached read's log cost. A caller cannot
// see h's options, so h must be a plain one, without ReplaceAttr or
// attributes added: config.Config.Logger's, which
// handlers' TestServedLogTakesSlogsLine holds to that.
func FlushAt(h slog.Handler, w *Writer, level slog.Level) slog.Handler {
	fh := flushHandler{Handler: h, w: w, level: level}
	if _, ok := h.(*slog.JSONHandler); ok {
		return jsonFlushHandler{fh}
	}
	return fh
}

// jsonFlushHandler is a flushHandler around a plain slog.JSONHandler.
// WithAttrs and WithGroup return a flushHandler: their lines carry more
// than a caller's own encoding would.
type jsonFlushHandler struct{ flushHandler }

// WriteJSONLine writes line, one JSON object and its newline encoded as
// the wrapped slog.JSONHandler encodes a record at level, and flushes at
// the same levels as Handle.
func (h jsonFlushHandler) WriteJSONLine(level slog.Level, line []byte) error {
	_, err := h.w.Write(line)
	return h.flushFor(level, err)
}

type flushHandler struct {
	slog.Handler
	w     *Writer
	level slog.Level
}

func (h flushHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.flushFor(r.Level, h.Handler.Handle(ctx, r))
}

// flushFor writes out the buffer after a line at level when level is at or
// above h's, and returns err, else the flush's error.
func (h flushHandler) flushFor(level slog.Level, err error) error {
	if level >= h.level {
		if ferr := h.w.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h flushHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushHandler{Handler: h.Handler.WithAttrs(attrs), w: h.w, level: h.level}
}

func (h flushHandler) WithGroup(name string) slog.Handler {
	return flushHandler{Handler: h.Handler.WithGroup(name), w: h.w, level: h.level}
}

// Buffering of a serving process's log: lines reach the output within
// serverFlushEvery, warnings and errors at once.
const (
	serverBufferSize = 64 << 10
	serverFlushEvery = 200 * time.Millisecond
)

// ServerLogger is a serving process's logger: the logger newLogger builds
// (config.Config.Logger) on a buffered w. The returned func writes out what
// is left; call it before the process exits.
func ServerLogger(w io.Writer, newLogger func(io.Writer) *slog.Logger) (*slog.Logger, func()) {
	bw := New(w, serverBufferSize, serverFlushEvery)
	log := slog.New(FlushAt(newLogger(bw).Handler(), bw, slog.LevelWarn))
	return log, func() { _ = bw.Close() }
}
