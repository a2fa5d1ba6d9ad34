package dbcache

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/replyrocket/replyrocket/internal/cache"
)

// TestResolve pins the resolver lookup the generated bumps call: keys
// deduplicated, nothing to look up is found, and a failed lookup, a
// missed key or too many keys is not (the caller bumps wide).
func TestResolve(t *testing.T) {
	var asked [][]int
	lookup := func(miss bool, err error) func(context.Context, []int) ([]int, error) {
		return func(_ context.Context, keys []int) ([]int, error) {
			asked = append(asked, keys)
			if miss {
				keys = keys[1:]
			}
			return slices.Clone(keys), err
		}
	}
	ctx := context.Background()
	if rows, ok := resolve(ctx, lookup(false, nil), []int{3, 1, 3}); !ok || !slices.Equal(rows, []int{3, 1}) || !slices.Equal(asked[0], []int{3, 1}) {
		t.Errorf("got %v, %v asking %v: want [3 1], true asking [3 1]", rows, ok, asked)
	}
	if _, ok := resolve(ctx, lookup(false, nil), nil); !ok || len(asked) != 1 {
		t.Errorf("no keys: got %v asking %v, want true without a lookup", ok, asked[1:])
	}
	many := make([]int, cache.MaxResolveKeys+1)
	for i := range many {
		many[i] = i
	}
	for name, tc := range map[string]struct {
		lookup func(context.Context, []int) ([]int, error)
		keys   []int
	}{
		"error":    {lookup(false, errors.New("down")), []int{1}},
		"miss":     {lookup(true, nil), []int{1, 2}},
		"too many": {lookup(false, nil), many},
	} {
		if rows, ok := resolve(ctx, tc.lookup, tc.keys); ok || rows != nil {
			t.Errorf("%s: got %v, %v; want nil, false", name, rows, ok)
		}
	}
}
