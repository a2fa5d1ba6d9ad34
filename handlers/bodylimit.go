package handlers

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// DefaultBodyDrainBytes is how much of a body over the limit is read and
// discarded before the 413 when Deps leaves it unset.
const DefaultBodyDrainBytes = 32 << 20

// bodyDrainTime bounds how long draining may take, so a client trickling a
// huge body cannot hold the connection.
const bodyDrainTime = 10 * time.Second

// drainRejectedBody makes a 413 readable by clients that write the whole
// body before they read anything (Python's urllib, many SDKs).
//
// Without it the server answers while the client is still sending, then
// closes the connection with unread data in its receive buffer; the kernel
// answers that with a reset, and the client sees "connection reset" instead
// of the 413. So, when the body limit rejected a request, the rest of the
// body is read and thrown away, up to limit bytes and bodyDrainTime, before
// the answer goes out. A body announced larger than that is not read (the
// connection closes, as it must); neither is the body of a client that
// asked "Expect: 100-continue" and so has not sent it yet.
//
// It runs before the body limit, so it sees the request's own body, which
// the limit's reader wraps.
func drainRejectedBody(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			body := req.Body
			err := next(c)
			if err == nil || !isTooLarge(err) || limit <= 0 || body == nil || body == http.NoBody {
				return err
			}
			h := c.Response().Header()
			if strings.EqualFold(req.Header.Get("Expect"), "100-continue") || req.ContentLength > limit {
				h.Set(echo.HeaderConnection, "close")
				return err
			}
			rc := http.NewResponseController(c.Response().Writer)
			_ = rc.SetReadDeadline(time.Now().Add(bodyDrainTime))
			n, derr := io.CopyN(io.Discard, body, limit)
			if derr == nil && n == limit || derr != nil && !errors.Is(derr, io.EOF) {
				// More than we read, or the client stalled: close after the 413.
				h.Set(echo.HeaderConnection, "close")
			}
			return err
		}
	}
}
