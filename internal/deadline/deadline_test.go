package deadline

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

type ctxKey struct{}

// TestMatchesWithTimeout runs each scenario on a Context and on
// context.WithTimeout and compares what a caller can see: Err, Cause,
// whether Done is closed, the deadline and values.
func TestMatchesWithTimeout(t *testing.T) {
	parentCause := errors.New("client went away")
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		// parent makes the parent context; cancel, when not nil, ends it.
		parent func() (context.Context, func())
		// before runs on the context before it is compared; release stands
		// for Release or the CancelFunc.
		before func(ctx context.Context, release func())
		want   error
	}{
		{name: "before the deadline", timeout: time.Hour, want: nil},
		{name: "after the deadline, never waited on", timeout: time.Millisecond,
			before: func(context.Context, func()) { time.Sleep(5 * time.Millisecond) }, want: context.DeadlineExceeded},
		{name: "after the deadline, waited on", timeout: time.Millisecond,
			before: func(ctx context.Context, _ func()) { <-ctx.Done() }, want: context.DeadlineExceeded},
		{name: "parent canceled first", timeout: time.Hour,
			parent: func() (context.Context, func()) {
				ctx, cancel := context.WithCancelCause(context.WithValue(context.Background(), ctxKey{}, "v"))
				return ctx, func() { cancel(parentCause) }
			},
			want: context.Canceled},
		{name: "parent's deadline earlier", timeout: time.Hour,
			parent: func() (context.Context, func()) {
				ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), ctxKey{}, "v"), time.Millisecond)
				return ctx, func() { time.Sleep(5 * time.Millisecond); _ = cancel }
			},
			want: context.DeadlineExceeded},
		{name: "released before any wait", timeout: time.Hour,
			before: func(_ context.Context, release func()) { release() }, want: context.Canceled},
		{name: "released after a wait", timeout: time.Hour,
			before: func(ctx context.Context, release func()) { _ = ctx.Done(); release() }, want: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			makeParent := tc.parent
			if makeParent == nil {
				// Cancelable, as net/http's request context is: Cause then
				// finds a cancellation state above the Context.
				makeParent = func() (context.Context, func()) {
					ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
					t.Cleanup(cancel)
					return ctx, nil
				}
			}
			run := func(lazy bool) (err, cause error, done bool, dl time.Time, val any) {
				parent, end := makeParent()
				var ctx context.Context
				var release func()
				if lazy {
					d := With(parent, tc.timeout)
					ctx, release = d, d.Release
				} else {
					ctx, release = context.WithTimeout(parent, tc.timeout)
				}
				defer release()
				if end != nil {
					end()
				}
				if tc.before != nil {
					tc.before(ctx, release)
				}
				// Cause first: it must not depend on Err having armed the timer.
				cause = context.Cause(ctx)
				err = ctx.Err()
				select {
				case <-ctx.Done():
					done = true
				default:
				}
				dl, _ = ctx.Deadline()
				return err, cause, done, dl, ctx.Value(ctxKey{})
			}
			wantErr, wantCause, wantDone, wantDL, wantVal := run(false)
			err, cause, done, dl, val := run(true)
			if !errors.Is(wantErr, tc.want) {
				t.Fatalf("the scenario itself is wrong: context.WithTimeout's Err is %v, want %v", wantErr, tc.want)
			}
			if err != wantErr || cause != wantCause || done != wantDone || val != wantVal {
				t.Errorf("Err, Cause, Done closed, Value = %v, %v, %v, %v; context.WithTimeout: %v, %v, %v, %v",
					err, cause, done, val, wantErr, wantCause, wantDone, wantVal)
			}
			if d := dl.Sub(wantDL).Abs(); d > 50*time.Millisecond {
				t.Errorf("deadline %v, context.WithTimeout's %v", dl, wantDL)
			}
		})
	}
}

// TestDerivedContextsRegisterWithTheTimer: contexts derived from a Context
// end with it and add no goroutine each (the context package watches a
// parent it does not recognise from a goroutine per child).
func TestDerivedContextsRegisterWithTheTimer(t *testing.T) {
	d := With(context.Background(), 50*time.Millisecond)
	defer d.Release()
	before := runtime.NumGoroutine()
	var children []context.Context
	for range 100 {
		c, cancel := context.WithCancel(d)
		defer cancel()
		children = append(children, c)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(d, func() { close(fired) })
	defer stop()
	if n := runtime.NumGoroutine() - before; n > 5 {
		t.Fatalf("deriving 100 contexts started %d goroutines", n)
	}
	<-fired
	for _, c := range children {
		<-c.Done()
		if c.Err() != context.DeadlineExceeded || context.Cause(c) != context.DeadlineExceeded {
			t.Fatalf("child: Err %v, Cause %v; want the deadline's, as under context.WithTimeout", c.Err(), context.Cause(c))
		}
	}
}

// TestReleaseEndsDerivedContexts: Release cancels what was derived, as a
// CancelFunc does.
func TestReleaseEndsDerivedContexts(t *testing.T) {
	d := With(context.Background(), time.Hour)
	child, cancel := context.WithCancel(d)
	defer cancel()
	d.Release()
	select {
	case <-child.Done():
	case <-time.After(time.Second):
		t.Fatal("a derived context outlived Release")
	}
}

// TestUnwaitedCostsOneAllocation: a request that never waits pays for the
// Context alone; context.WithTimeout allocates its timer context, timer
// and registration.
func TestUnwaitedCostsOneAllocation(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "v")
	lazy := testing.AllocsPerRun(1000, func() {
		d := With(parent, time.Minute)
		_, _ = d.Deadline()
		_ = d.Err()
		_ = d.Value(ctxKey{})
		d.Release()
	})
	std := testing.AllocsPerRun(1000, func() {
		ctx, cancel := context.WithTimeout(parent, time.Minute)
		_, _ = ctx.Deadline()
		_ = ctx.Err()
		cancel()
	})
	if lazy > 1 || lazy >= std {
		t.Errorf("%v allocations a request without a wait; context.WithTimeout: %v", lazy, std)
	}
}

// TestInitInPlace: a Context held inside another value, initialised with
// Init, allocates nothing until waited on and ends as With's does.
func TestInitInPlace(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "v")
	type holder struct {
		Context
		extra int
	}
	h := new(holder)
	allocs := testing.AllocsPerRun(100, func() {
		*h = holder{}
		h.Init(parent, time.Minute)
		_ = h.Err()
		_ = h.Value(ctxKey{})
	})
	if allocs != 0 {
		t.Errorf("Init then Err and Value: %v allocations, want 0", allocs)
	}
	*h = holder{}
	h.Init(parent, time.Hour)
	if at, ok := h.Deadline(); !ok || time.Until(at) < 59*time.Minute {
		t.Errorf("Deadline() = %v, %v; want about an hour from now", at, ok)
	}
	child, cancel := context.WithCancel(&h.Context)
	defer cancel()
	h.Release()
	<-child.Done()
	if h.Err() != context.Canceled || h.Value(ctxKey{}) != "v" {
		t.Errorf("after Release: Err %v, Value %v; want canceled and the parent's value", h.Err(), h.Value(ctxKey{}))
	}
}

// TestConcurrentWaitsAndRelease races waiters, Err and Release (run under
// -race): every waiter ends, none hangs.
func TestConcurrentWaitsAndRelease(t *testing.T) {
	for range 200 {
		d := With(context.Background(), time.Hour)
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				if i%2 == 0 {
					<-d.Done()
				} else {
					for d.Err() == nil {
						runtime.Gosched()
					}
				}
			})
		}
		d.Release()
		wg.Wait()
		if !errors.Is(d.Err(), context.Canceled) {
			t.Fatalf("Err after Release: %v", d.Err())
		}
	}
}

// BenchmarkUnwaited compares a request context that is never waited on, as
// on a cache hit, with context.WithTimeout's:
//
//	go test ./internal/deadline -run '^$' -bench . -benchmem
func BenchmarkUnwaited(b *testing.B) {
	parent := context.WithValue(context.Background(), ctxKey{}, "v")
	b.Run("deadline.With", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			d := With(parent, time.Minute)
			_ = d.Err()
			d.Release()
		}
	})
	b.Run("context.WithTimeout", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			ctx, cancel := context.WithTimeout(parent, time.Minute)
			_ = ctx.Err()
			cancel()
		}
	})
}
