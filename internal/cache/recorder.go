package cache

import (
	"context"
	"sync/atomic"
)

// Outcome is how an annotated read was served.
type Outcome int32

// Ordered from most to least cached: a request that made several reads
// reports the least cached one, since that is what its latency reflects.
const (
	OutcomeNone Outcome = iota
	OutcomeHit
	OutcomeStale
	OutcomeMiss
	OutcomeBypass
)

func (o Outcome) String() string {
	switch o {
	case OutcomeHit:
		return "hit"
	case OutcomeStale:
		return "stale"
	case OutcomeMiss:
		return "miss"
	case OutcomeBypass:
		return "bypass"
	}
	return ""
}

// Recorder collects the outcomes of the annotated reads made with one
// context, for the X-Cache response header.
type Recorder struct{ worst atomic.Int32 }

type recorderKey struct{}

// WithRecorder returns a context whose annotated reads are recorded in the
// returned Recorder.
func WithRecorder(ctx context.Context) (context.Context, *Recorder) {
	r := &Recorder{}
	return context.WithValue(ctx, recorderKey{}, r), r
}

// Outcome is the least cached outcome recorded, OutcomeNone if no annotated
// read ran.
func (r *Recorder) Outcome() Outcome { return Outcome(r.worst.Load()) }

func (r *Recorder) record(o Outcome) {
	if r == nil {
		return
	}
	for {
		cur := r.worst.Load()
		if int32(o) <= cur || r.worst.CompareAndSwap(cur, int32(o)) {
			return
		}
	}
}

// IsRecorderKey reports whether key is the context key WithRecorder sets:
// a context of the caller's own that answers it with a *Recorder has its
// annotated reads recorded there, with no context node of its own.
func IsRecorderKey(key any) bool {
	_, ok := key.(recorderKey)
	return ok
}

func recorderFrom(ctx context.Context) *Recorder {
	r, _ := ctx.Value(recorderKey{}).(*Recorder)
	return r
}
