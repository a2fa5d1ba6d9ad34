package handlers

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestTouchLimiterOncePerMinutePerKey(t *testing.T) {
	l := newTouchLimiter()
	a, b := uuid.New(), uuid.New()
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		key  uuid.UUID
		at   time.Duration
		want bool
	}{
		{a, 0, true},
		{a, 30 * time.Second, false},
		{b, 30 * time.Second, true},
		{a, 59 * time.Second, false},
		{a, 60 * time.Second, true},
		{b, 61 * time.Second, false},
		{b, 90 * time.Second, true},
	}
	for i, s := range steps {
		if got := l.due(s.key, t0.Add(s.at)); got != s.want {
			t.Fatalf("step %d: due = %v, want %v", i, got, s.want)
		}
	}
}

func TestTouchLimiterStaysBounded(t *testing.T) {
	l := newTouchLimiter()
	t0 := time.Now()
	for i := range maxTrackedKeys + 10 {
		l.due(uuid.New(), t0.Add(time.Duration(i)*time.Millisecond))
	}
	if n := l.last.Size(); n > maxTrackedKeys {
		t.Fatalf("limiter tracks %d keys, bound is %d", n, maxTrackedKeys)
	}
}
