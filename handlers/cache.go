package handlers

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/internal/cache"
)

// HeaderXCache says how a response's cached reads were served: hit, stale,
// miss or bypass (the least cached of them when there were several).
const HeaderXCache = "X-Cache"

// CacheHeader is the API middleware that reports X-Cache. The header is set
// just before the response is written, once the handler's reads ran;
// responses that made no cached read carry none.
//
// No allocation per request under New's chain: the recorder and a writer
// that sets the header as the status goes out live in the request's
// requestState. Elsewhere (a context that is not one) one: a context node
// that holds both. A cache.WithRecorder context, its recorder and a
// Response.Before closure (with echo's slice of them) were four, found in
// the cached read's allocation profile.
func CacheHeader() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req, res := c.Request(), c.Response()
			if st := stateOf(c); st != nil && !st.recording.Load() {
				// The request's own slots (requestState): no allocation.
				st.w = xCacheWriter{ResponseWriter: res.Writer, rec: &st.rec}
				st.recording.Store(true)
				res.Writer = &st.w
				return next(c)
			}
			r := &cacheRecording{Context: req.Context()}
			r.w = xCacheWriter{ResponseWriter: res.Writer, rec: &r.rec}
			c.SetRequest(req.WithContext(r))
			// Not restored after next: an error it returns is written by
			// the error handler further out, and reports X-Cache too. The
			// middleware that set res.Writer restores its own (compress),
			// and echo resets it per request.
			res.Writer = &r.w
			return next(c)
		}
	}
}

// cacheRecording is the request context that records its annotated reads
// (cache.IsRecorderKey) and holds the writer that reports them.
type cacheRecording struct {
	context.Context
	rec cache.Recorder
	w   xCacheWriter
}

func (r *cacheRecording) Value(key any) any {
	if cache.IsRecorderKey(key) {
		return &r.rec
	}
	return r.Context.Value(key)
}

// xCacheWriter sets X-Cache from rec when the status is written (echo's
// Response writes the status through it before any body).
type xCacheWriter struct {
	http.ResponseWriter
	rec *cache.Recorder
}

func (w *xCacheWriter) WriteHeader(code int) {
	if o := w.rec.Outcome(); o != cache.OutcomeNone {
		// A shared value slice (its capacity is its length, so an Add
		// copies it): Set would allocate one per response.
		w.Header()[HeaderXCache] = xCacheValues[o]
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the writer under it.
func (w *xCacheWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes a flush on, for callers that assert http.Flusher.
func (w *xCacheWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// xCacheValues are X-Cache's header values by outcome.
var xCacheValues = func() (v [cache.OutcomeBypass + 1][]string) {
	for o := range v {
		v[o] = []string{cache.Outcome(o).String()}[:1:1]
	}
	return v
}()

type cacheHandlers struct{ c *cache.Cache }

func (h cacheHandlers) stats(c echo.Context) error {
	return writeJSON(c, http.StatusOK, h.c.SnapshotContext(c.Request().Context()))
}

type clearedJSON struct {
	// RedisKeysRemoved counts the shared tier's keys; L1 is emptied too.
	RedisKeysRemoved int64 `json:"redis_keys_removed"`
}

func (h cacheHandlers) clear(c echo.Context) error {
	n, err := h.c.Clear(c.Request().Context())
	if err != nil {
		p := newProblem(http.StatusServiceUnavailable, "cache-unavailable", "Cache unavailable",
			"The cache could not be cleared completely; try again.")
		p.retryAfter = 1
		p.cause = err
		return p
	}
	return writeJSON(c, http.StatusOK, clearedJSON{RedisKeysRemoved: n})
}

type invalidateJSON struct {
	Table string `json:"table" required:"true" description:"A table the cache knows (GET /db-monitor/cache lists them). The tables its triggers write are invalidated with it: emails also invalidates campaign_email_counts."`
}

func (h cacheHandlers) invalidate(c echo.Context) error {
	var req invalidateJSON
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Table == "" {
		return validationFailed([]FieldError{{Field: "table", Message: "is required"}})
	}
	err := h.c.InvalidateTable(c.Request().Context(), req.Table)
	if errors.Is(err, cache.ErrUnknownTable) {
		return validationFailed([]FieldError{{Field: "table", Message: "is not a table the cache knows; one of " + strings.Join(h.c.Tables(), ", ")}})
	}
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, req)
}
