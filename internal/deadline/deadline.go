// Package deadline gives a request a deadline whose timer is made only
// when something waits on it.
//
// context.WithTimeout allocates a timer context, starts a runtime timer and
// registers with its parent on every call. A request served from the
// in-process cache never waits on its context, yet paid all of that: about
// a microsecond and four allocations of a cached read's thirty microseconds
// (see docs/decisions/0004-lazy-deadline-timer.md). A Context from With reports the
// same deadline and the same errors, and turns into a real
// context.WithDeadline the first time something waits on it: pgx, a pool
// wait, Redis, context.AfterFunc, or any context derived with cancellation
// (the context package calls Done to register a child).
package deadline

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Context is a context with a deadline that arms its timer on first wait.
// Release it when the work it bounds is done.
type Context struct {
	parent context.Context
	at     time.Time // the earlier of the parent's deadline and the timeout

	once     sync.Once
	isArmed  atomic.Bool        // set once armed and cancelFn are
	armed    context.Context    // context.WithDeadline(parent, at), once made
	cancelFn context.CancelFunc // armed's
}

// With returns a context that is done at now+timeout or when parent is,
// whichever comes first, with the errors context.WithTimeout would give.
func With(parent context.Context, timeout time.Duration) *Context {
	c := new(Context)
	c.Init(parent, timeout)
	return c
}

// Init makes c, a zero Context, what With would return, in place: for a
// caller that holds it inside a larger per-request value and so saves the
// allocation. c must not be copied afterwards, nor initialised twice.
func (c *Context) Init(parent context.Context, timeout time.Duration) {
	at := time.Now().Add(timeout)
	if pd, ok := parent.Deadline(); ok && pd.Before(at) {
		at = pd
	}
	c.parent, c.at = parent, at
}

// arm makes the real deadline context, once, and returns it.
func (c *Context) arm() context.Context {
	c.once.Do(func() {
		c.armed, c.cancelFn = context.WithDeadline(c.parent, c.at)
		c.isArmed.Store(true)
	})
	return c.armed
}

// peek returns the armed context, or nil while there is none.
func (c *Context) peek() context.Context {
	if c.isArmed.Load() {
		return c.armed
	}
	return nil
}

// Deadline is the earlier of the parent's deadline and the timeout's.
func (c *Context) Deadline() (time.Time, bool) { return c.at, true }

// Done arms the timer and returns its channel. Derived contexts register
// through it, so they hang off the timer context as they would under
// context.WithDeadline, rather than each watching this one from a
// goroutine.
func (c *Context) Done() <-chan struct{} { return c.arm().Done() }

// Err is nil before the deadline while the parent lives, and otherwise
// what context.WithDeadline's Err says: context.DeadlineExceeded, or the
// parent's error when it ended first. It arms the timer when there is an
// error to report, so that later calls and context.Cause agree with it.
func (c *Context) Err() error {
	if a := c.peek(); a != nil {
		return a.Err()
	}
	if c.parent.Err() == nil && time.Now().Before(c.at) {
		return nil
	}
	return c.arm().Err()
}

// Value answers from the armed context once there is one, from the parent
// before. (context.Cause needs nothing more: where the cancellation state
// it finds holds no cause, it returns Err, which reports the deadline
// whether or not the timer was made.)
func (c *Context) Value(key any) any {
	if a := c.peek(); a != nil {
		return a.Value(key)
	}
	return c.parent.Value(key)
}

// Release stops the timer, if one was made, and cancels whatever was
// derived from the context. Call it when the request ends. Afterwards the
// context is canceled, as one from context.WithTimeout is after its cancel:
// a late waiter finds Done closed and Err context.Canceled, with no timer
// made for it.
func (c *Context) Release() {
	c.once.Do(func() {
		c.armed, c.cancelFn = released{c}, func() {}
		c.isArmed.Store(true)
	})
	c.cancelFn()
}

// released is what a Context turns into when it is released before any wait.
type released struct{ c *Context }

var closed = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

func (r released) Deadline() (time.Time, bool) { return r.c.at, true }
func (released) Done() <-chan struct{}         { return closed }
func (released) Err() error                    { return context.Canceled }
func (r released) Value(key any) any           { return r.c.parent.Value(key) }

var _ context.Context = (*Context)(nil)
