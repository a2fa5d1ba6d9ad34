package cache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// sharedLoads gives each shared database load (one singleflight call) a
// context of its own that lives exactly as long as someone waits for it:
//
//   - its deadline is the latest among its waiters' deadlines (each
//     request's REQUEST_TIMEOUT), never past LoadTimeout, and it moves out
//     when a waiter with a later deadline joins;
//   - it is canceled when the last waiter stops waiting, so a slow query
//     never outlives the requests that wanted it (pgx cancels it on the
//     server).
//
// One caller giving up still does not fail the others: the load only ends
// early when nobody is left. Stale-while-revalidate refreshes, which nobody
// waits for, keep the detached LoadTimeout context of loader.
type sharedLoads struct {
	mu sync.Mutex
	m  map[string]*sharedLoad
}

type sharedLoad struct {
	ctx      *loadContext
	cancel   context.CancelFunc
	waiters  int
	deadline time.Time
	timer    *time.Timer
}

// join registers a waiter of the load named key and returns the load's
// context, and leave, which the waiter calls when it stops waiting
// (answered or gone). forget runs when the last waiter leaves, so that a
// later caller starts a fresh load instead of joining the canceled one.
func (s *sharedLoads) join(ctx context.Context, key string, max time.Duration, forget func()) (context.Context, func()) {
	now := time.Now()
	deadline := now.Add(max)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]*sharedLoad)
	}
	l, ok := s.m[key]
	if !ok {
		inner, cancel := context.WithCancel(context.WithoutCancel(ctx))
		lctx := &loadContext{Context: inner}
		l = &sharedLoad{ctx: lctx, cancel: cancel, deadline: deadline}
		l.timer = time.AfterFunc(deadline.Sub(now), func() {
			lctx.expired.Store(true)
			cancel()
		})
		s.m[key] = l
	} else if deadline.After(l.deadline) {
		l.deadline = deadline
		l.timer.Reset(deadline.Sub(now))
	}
	l.waiters++
	var once sync.Once
	return l.ctx, func() { once.Do(func() { s.leave(key, l, forget) }) }
}

func (s *sharedLoads) leave(key string, l *sharedLoad, forget func()) {
	s.mu.Lock()
	l.waiters--
	last := l.waiters == 0
	if last && s.m[key] == l {
		delete(s.m, key)
	}
	s.mu.Unlock()
	if last {
		l.timer.Stop()
		l.cancel()
		forget()
	}
}

// loadContext is a cancel context whose Err says DeadlineExceeded when the
// waiters' deadline ended it (a 504 for them), Canceled when they all left.
type loadContext struct {
	context.Context
	expired atomic.Bool
}

func (c *loadContext) Err() error {
	err := c.Context.Err()
	if err != nil && c.expired.Load() {
		return context.DeadlineExceeded
	}
	return err
}
