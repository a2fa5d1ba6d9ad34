// Package writedeadline keeps a connection's write deadline armed across
// the requests of a kept-alive connection instead of arming and clearing
// it on each one.
//
// With HTTP_WRITE_TIMEOUT set, net/http sets a connection's write deadline
// when it has read a request's headers and clears it when the response is
// done: a runtime timer added and deleted per request, 0.7 µs of a cached
// read's 29 in the loadtest's profile, where the bare server pays none
// (Go issue 15133 names the cost; fasthttp re-arms only when a quarter of
// the timeout has passed, which lets a deadline land early). Here a
// deadline is never earlier than asked and at most slack later, and a
// cleared deadline is cleared before the next byte is written:
//
//   - SetWriteDeadline(t) leaves the armed deadline alone when it lies in
//     [t, t+slack]; otherwise it arms t+slack.
//   - SetWriteDeadline(zero) only notes the clear. The timer stays armed
//     (nothing is written between two requests) and the next request's
//     deadline usually falls within its slack; a Write or ReadFrom that
//     comes first, as after a handler's own clear through
//     http.ResponseController, clears it for real before writing.
//   - SetDeadline, which clears both deadlines on hijack, passes through.
//
// A deadline that fires while the connection is idle does no harm: the
// next request asks for a later one, which re-arms the timer and resets
// its expiry.
//
// net/http sets the write deadline, writes and clears it on the
// connection's own goroutine (a handler's ResponseController calls come
// from the same one), so a conn's bookkeeping has no lock.
package writedeadline

import (
	"io"
	"net"
	"sync/atomic"
	"time"
)

// Listen wraps ln so that its TCP connections coalesce write deadlines
// asked for by a server whose WriteTimeout is writeTimeout: within a slack
// of writeTimeout/SlackDivisor (see the package comment). A writeTimeout
// too short for a slack returns ln itself; other kinds of connection are
// returned as they are.
func Listen(ln net.Listener, writeTimeout time.Duration) net.Listener {
	return listen(ln, writeTimeout/SlackDivisor)
}

// SlackDivisor sets the slack: a deadline lands at most 1/SlackDivisor of
// the write timeout late (1.4 s of the default 90 s), while a connection
// under load re-arms its timer once per slack rather than per request.
const SlackDivisor = 64

func listen(ln net.Listener, slack time.Duration) net.Listener {
	if slack <= 0 {
		return ln
	}
	return &listener{Listener: ln, slack: slack}
}

type listener struct {
	net.Listener
	slack time.Duration
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		return &conn{TCPConn: tc, slack: l.slack}, nil
	}
	return c, err
}

// conn is a TCP connection whose write deadline is coalesced. It embeds
// *net.TCPConn so that net/http still finds CloseWrite (the lingering close
// after a refused body) and ReadFrom (sendfile); ReadFrom is overridden
// only to honour a pending clear.
type conn struct {
	*net.TCPConn
	slack time.Duration

	armed        time.Time    // the write deadline on the socket; zero for none
	clearPending bool         // a clear was asked and not yet applied
	arms         atomic.Int64 // timers armed or cleared on the socket
}

// SetWriteDeadline arms t+slack unless the armed deadline already lies in
// [t, t+slack]; a zero t is applied before the next write.
func (c *conn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		c.clearPending = !c.armed.IsZero()
		return nil
	}
	c.clearPending = false
	if keep(c.armed, t, c.slack) {
		return nil
	}
	return c.arm(t.Add(c.slack))
}

// keep reports whether an armed deadline serves a request for t: not
// earlier than t, not more than slack later.
func keep(armed, t time.Time, slack time.Duration) bool {
	return !armed.IsZero() && !armed.Before(t) && !armed.After(t.Add(slack))
}

func (c *conn) arm(t time.Time) error {
	c.arms.Add(1)
	return c.record(t, c.TCPConn.SetWriteDeadline(t))
}

// SetDeadline sets both deadlines as asked.
func (c *conn) SetDeadline(t time.Time) error {
	c.clearPending = false
	return c.record(t, c.TCPConn.SetDeadline(t))
}

// record notes t as the socket's write deadline once setting it worked;
// after a failure the deadline is unknown, and the next request arms again.
func (c *conn) record(t time.Time, err error) error {
	if err != nil {
		t = time.Time{}
	}
	c.armed = t
	return err
}

// applyClear clears the write deadline for real when a clear is pending.
func (c *conn) applyClear() error {
	if !c.clearPending {
		return nil
	}
	c.clearPending = false
	return c.arm(time.Time{})
}

func (c *conn) Write(b []byte) (int, error) {
	if err := c.applyClear(); err != nil {
		return 0, err
	}
	return c.TCPConn.Write(b)
}

func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if err := c.applyClear(); err != nil {
		return 0, err
	}
	return c.TCPConn.ReadFrom(r)
}
