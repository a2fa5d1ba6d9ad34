package handlers

import (
	"fmt"
	"net/http"

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
			orig := res.Writer
			// Restored even when next panics, so the 500 that recoverPanics
			// returns is written to the connection, not to a closed wrapper.
			defer func() { res.Writer = orig }()
			var err error
			wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				res.Writer = w
				c.SetRequest(r)
				if err = next(c); err != nil {
					c.Error(err)
				}
			})).ServeHTTP(orig, c.Request())
			return err
		}
	}
}
