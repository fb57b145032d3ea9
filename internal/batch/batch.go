// Package batch merges lookups by ID from many reconciles into one AWS call.
package batch

import (
	"context"
	"sync"
	"time"
)

// Fetch describes the given IDs in one call. IDs absent from the result do not exist.
type Fetch[T any] func(ctx context.Context, ids []string) (map[string]T, error)

// Batcher collects IDs for a short window, then fetches them together.
type Batcher[T any] struct {
	fetch   Fetch[T]
	window  time.Duration
	maxSize int

	mu      sync.Mutex
	pending *round[T]
}

type round[T any] struct {
	started bool
	ids     map[string]struct{}
	done    chan struct{}
	result  map[string]T
	err     error
}

// New returns a Batcher that waits window after the first ID before fetching,
// or fetches at once when maxSize IDs have gathered.
func New[T any](window time.Duration, maxSize int, fetch Fetch[T]) *Batcher[T] {
	return &Batcher[T]{fetch: fetch, window: window, maxSize: maxSize}
}

// Get returns the item for id, joining the round that is gathering IDs.
// With a window of zero it fetches at once, in the caller's goroutine.
func (b *Batcher[T]) Get(ctx context.Context, id string) (T, bool, error) {
	var zero T
	if b.window <= 0 {
		result, err := b.fetch(ctx, []string{id})
		if err != nil {
			return zero, false, err
		}
		item, ok := result[id]
		return item, ok, nil
	}
	r := b.join(id)
	select {
	case <-r.done:
	case <-ctx.Done():
		return zero, false, ctx.Err()
	}
	if r.err != nil {
		return zero, false, r.err
	}
	item, ok := r.result[id]
	return item, ok, nil
}

func (b *Batcher[T]) join(id string) *round[T] {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.pending
	if r == nil {
		r = &round[T]{ids: map[string]struct{}{}, done: make(chan struct{})}
		b.pending = r
		time.AfterFunc(b.window, func() { b.run(r) })
	}
	r.ids[id] = struct{}{}
	if len(r.ids) >= b.maxSize {
		b.pending = nil
		go b.run(r)
	}
	return r
}

func (b *Batcher[T]) run(r *round[T]) {
	b.mu.Lock()
	if b.pending == r {
		b.pending = nil
	}
	if r.started { // already run because it filled up
		b.mu.Unlock()
		return
	}
	r.started = true
	ids := make([]string, 0, len(r.ids))
	for id := range r.ids {
		ids = append(ids, id)
	}
	b.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r.result, r.err = b.fetch(ctx, ids)
	close(r.done)
}
