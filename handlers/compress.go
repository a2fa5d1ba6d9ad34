package handlers

import (
	"fmt"
	"net/http"
	"sync"

	"github.com/klauspost/compress/gzhttp"
	"github.com/labstack/echo/v4"
)

// compressMinSize is the smallest response worth compressing: below it the
// gzip header and a round of deflate cost more than the bytes they save.
const compressMinSize = 1024

// compress gzips responses of at least compressMinSize bytes for clients
// that accept it, through klauspost/compress's gzhttp.
//
// Why not Echo's Gzip middleware: it takes a gzip.Writer from its pool and
// resets it (clearing about 640 KB of deflate tables) on every request that
// accepts gzip, then resets it again for a response under MinLength, which
// is almost every API response. Under the loadtest that was 40 % of the
// uncached server's CPU and most of its allocated bytes (see
// docs/decisions/0007-gzhttp-compression.md). gzhttp buffers up to the minimum size and touches a
// compressor only once a response reaches it.
//
// Errors are written inside the wrapper (c.Error), so a problem document
// goes through the same writer as a success, before the wrapper closes it;
// the error is still returned for the access log, whose own c.Error then
// finds the response committed and does nothing.
const (
	headerAcceptEncoding = "Accept-Encoding"
	headerVary           = "Vary"
)

// varyAcceptEncoding is the Vary value gzhttp adds, one shared slice (its
// capacity is its length: an Add copies it).
var varyAcceptEncoding = []string{headerAcceptEncoding}[:1:1]

func compress() echo.MiddlewareFunc {
	wrap, err := gzhttp.NewWrapper(gzhttp.MinSize(compressMinSize))
	if err != nil {
		// Only bad options make NewWrapper fail; these are constants.
		panic(fmt.Sprintf("gzhttp options: %v", err))
	}
	// Wrapped once: calling wrap per request made gzhttp's handler closure,
	// ours and its captured error on every request that accepts an
	// encoding, three of a cached read's allocations. The request's echo
	// context and next reach the handler through the writer passed in, a
	// pooled gzCall that gzhttp wraps.
	gz := wrap(http.HandlerFunc(serveCompressed))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if len(c.Request().Header[headerAcceptEncoding]) == 0 {
				// No encoding can be chosen, so gzhttp would only add Vary
				// and pass the response through its no-gzip writer: five
				// allocations per request of every client that sends no
				// Accept-Encoding (wrk, many SDKs), for the same bytes.
				h := c.Response().Header()
				if _, ok := h[headerVary]; ok {
					h.Add(headerVary, headerAcceptEncoding)
				} else {
					h[headerVary] = varyAcceptEncoding
				}
				return next(c)
			}
			res := c.Response()
			call := gzCalls.Get().(*gzCall)
			*call = gzCall{ResponseWriter: res.Writer, c: c, next: next}
			// Restored even when next panics, so the 500 that recoverPanics
			// returns is written to the connection, not to a closed wrapper.
			defer func() {
				res.Writer = call.ResponseWriter
				*call = gzCall{}
				gzCalls.Put(call)
			}()
			gz.ServeHTTP(call, c.Request())
			return call.err
		}
	}
}

// gzCall is one request through the compressing handler: the connection's
// writer, which it passes on (gzhttp writes through it), and the echo
// context and handler serveCompressed runs.
type gzCall struct {
	http.ResponseWriter
	c    echo.Context
	next echo.HandlerFunc
	err  error
}

var gzCalls = sync.Pool{New: func() any { return new(gzCall) }}

// Unwrap lets http.ResponseController (a body limit's read deadline,
// gzhttp's Flush and Hijack) reach the connection's writer.
func (g *gzCall) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// Flush passes a flush on, for callers that assert http.Flusher.
func (g *gzCall) Flush() { _ = http.NewResponseController(g.ResponseWriter).Flush() }

// serveCompressed is the handler gzhttp wraps: w is gzhttp's writer around
// the gzCall the middleware passed. Errors are written inside it (see
// compress).
func serveCompressed(w http.ResponseWriter, r *http.Request) {
	call := findGzCall(w)
	if call == nil {
		// gzhttp always passes the writer it was given, wrapped; anything
		// else is a bug in this file, not a request to serve.
		panic("compress: gzhttp's writer does not wrap the gzCall")
	}
	c := call.c
	c.Response().Writer = w
	c.SetRequest(r)
	if call.err = call.next(c); call.err != nil {
		c.Error(call.err)
	}
}

// findGzCall unwraps w down to the gzCall under it.
func findGzCall(w http.ResponseWriter) *gzCall {
	for {
		if g, ok := w.(*gzCall); ok {
			return g
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
}
