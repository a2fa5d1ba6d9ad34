package handlers

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/deadline"
)

// headerValue is h.Get(key) for a key already in canonical form, as every
// header name constant here is: Get canonicalizes its key on each call, a
// scan of the name that the profile of a cached read put at 0.4 µs over
// its four header reads, against none in the bare server's.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// requestID gives every request an id, echoed in X-Request-ID. A caller's
// own id is kept when it is short and plain, so a proxy's or client's id
// follows the request through our logs; anything else is replaced, since
// it lands in log lines.
func requestID() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			if id := headerValue(c.Request().Header, echo.HeaderXRequestID); plainID(id) {
				h.Set(echo.HeaderXRequestID, id)
			} else {
				h[echo.HeaderXRequestID] = newRequestID()
			}
			return next(c)
		}
	}
}

// requestIDValue is a request id and its header value slice in one
// allocation: uuid.NewString and Header.Set made three.
type requestIDValue struct {
	vals [1]string
	text [36]byte
}

// newRequestID is a random (version 4) UUID as X-Request-ID's value. Its
// randomness is math/rand/v2's, the runtime's ChaCha8 per thread: an id
// names a request in logs and must not collide; it guards nothing.
func newRequestID() []string {
	var u [16]byte
	binary.LittleEndian.PutUint64(u[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(u[8:], rand.Uint64())
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	v := new(requestIDValue)
	formatUUID(&v.text, u)
	v.vals[0] = unsafe.String(&v.text[0], len(v.text))
	return v.vals[:]
}

func plainID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':'
		if !ok {
			return false
		}
	}
	return true
}

// requestTimeout bounds each request's work by timeout (REQUEST_TIMEOUT):
// the deadline reaches pgx, pool waits, Redis and shared cache loads
// through the request context. The central error handler maps deadline
// errors itself.
//
// In place of Echo's ContextTimeout, which makes a context.WithTimeout per
// request: a deadline.Context makes its timer only when something waits on
// it, which a read served from L1 never does (BenchmarkUnwaited: 0.2 µs and
// one allocation against 0.55 µs and four).
//
// The deadline lives in a requestState, the request's one context, which
// the key check and X-Cache fill in place (see requestState).
func requestTimeout(timeout time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			st := new(requestState)
			st.Init(req.Context(), timeout)
			defer st.Release()
			c.SetRequest(req.WithContext(st))
			return next(c)
		}
	}
}

// requestState is a request's context below requestTimeout: its deadline,
// and slots that requireUser (the principal, the actor and the key's hash)
// and CacheHeader (the reads' recorder and the X-Cache writer) fill in
// place. Each of them used to wrap the context and copy the request
// (Request.WithContext) for it: six of a cached read's nine allocations
// and about 0.75 KB, found in its allocation profile; now one.
//
// A slot is written once, then published by its flag; Value answers for
// it from then on, as the wrapping context did from the point it was set.
// The flags are atomic because a detached cache load may hold the context
// (a background refresh of the key lookup) and ask it for values while
// the request goes on. Middleware that finds the request's context is not
// a requestState (one that wrapped it in between) wraps as before.
type requestState struct {
	deadline.Context

	hasAuth atomic.Bool // auth is filled in
	auth    authSlots

	recording atomic.Bool // rec records and w reports it
	rec       cache.Recorder
	w         xCacheWriter
}

func (s *requestState) Value(key any) any {
	switch {
	case key == principalKey{}:
		if s.hasAuth.Load() {
			return &s.auth.p
		}
	case db.IsActorKey(key):
		if s.hasAuth.Load() {
			return &s.auth.actor
		}
	case cache.IsRecorderKey(key):
		if s.recording.Load() {
			return &s.rec
		}
	}
	return s.Context.Value(key)
}

// stateOf is the request's requestState, or nil when its context is
// another.
func stateOf(c echo.Context) *requestState {
	st, _ := c.Request().Context().(*requestState)
	return st
}

// recoverPanics turns a panic into a 500 problem and logs its stack; the
// client sees only the request id.
func recoverPanics(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				r := recover()
				if r == nil {
					return
				}
				if r == http.ErrAbortHandler {
					panic(r) // net/http's way to abort a response; not a bug
				}
				log.ErrorContext(c.Request().Context(), "panic", "panic", fmt.Sprint(r),
					"request_id", headerValue(c.Response().Header(), echo.HeaderXRequestID),
					"stack", string(debug.Stack()))
				err = newProblem(http.StatusInternalServerError, "internal", "Internal server error",
					"Something went wrong on our side; the request id identifies it in our logs.")
			}()
			return next(c)
		}
	}
}
