// Package batch merges lookups by ID from many reconciles into one AWS call.
package batch

import (
	"context"
	"sync"
	"time"
)

// Fetch describes the given IDs in one call. IDs absent from the result do not exist.
type Fetch[T any] func(ctx context.Context, ids []string) (map[string]T, error)

// Batcher merges lookups: a round gathers IDs for window after its first,
// then fetches them together. An eager Batcher (NewEager) fetches a lookup
// made while no fetch is under way at once, and gathers only those made
// while one is: they are fetched together when it ends, or window after the
// first of them at the latest.
type Batcher[T any] struct {
	fetch   Fetch[T]
	window  time.Duration
	maxSize int
	eager   bool

	mu       sync.Mutex
	pending  *round[T]
	fetching int // rounds under way
}

type round[T any] struct {
	started bool
	ids     map[string]struct{}
	done    chan struct{}
	result  map[string]T
	err     error
}

// New returns a Batcher whose rounds gather for window, or until maxSize IDs
// have gathered. A window of zero fetches each lookup alone, in the caller's
// goroutine.
func New[T any](window time.Duration, maxSize int, fetch Fetch[T]) *Batcher[T] {
	return &Batcher[T]{fetch: fetch, window: window, maxSize: maxSize}
}

// NewEager returns an eager Batcher: no lookup waits unless a fetch is under
// way. It spends latency on nothing, but merges fewer lookups that come
// close together when none is under way.
func NewEager[T any](window time.Duration, maxSize int, fetch Fetch[T]) *Batcher[T] {
	return &Batcher[T]{fetch: fetch, window: window, maxSize: maxSize, eager: true}
}

// Get returns the item for id, joining the round that is gathering IDs.
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
		if b.eager && b.fetching == 0 {
			go b.run(r)
		} else {
			time.AfterFunc(b.window, func() { b.run(r) })
		}
	}
	r.ids[id] = struct{}{}
	if len(r.ids) >= b.maxSize {
		b.pending = nil
		go b.run(r)
	}
	return r
}

// run fetches the round, then, if eager, each round that gathered while it fetched.
func (b *Batcher[T]) run(r *round[T]) {
	for r != nil {
		r = b.runOne(r)
	}
}

func (b *Batcher[T]) runOne(r *round[T]) *round[T] {
	b.mu.Lock()
	if b.pending == r {
		b.pending = nil
	}
	if r.started { // already run: it filled up, or the fetch before it ended
		b.mu.Unlock()
		return nil
	}
	r.started = true
	b.fetching++
	ids := make([]string, 0, len(r.ids))
	for id := range r.ids {
		ids = append(ids, id)
	}
	b.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r.result, r.err = b.fetch(ctx, ids)
	close(r.done)

	b.mu.Lock()
	defer b.mu.Unlock()
	b.fetching--
	if !b.eager {
		return nil
	}
	return b.pending // those that gathered meanwhile go now
}
