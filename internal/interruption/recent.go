package interruption

import (
	"sync"
	"time"
)

// recent tracks event IDs being handled now and, for a TTL, those handled
// successfully, so duplicate deliveries are handled once. It holds at most
// max finished IDs; the oldest go first.
type recent struct {
	ttl time.Duration
	max int

	mu       sync.Mutex
	inflight map[string]chan struct{}
	done     map[string]time.Time // ID -> expiry
	order    []doneID             // finished IDs, oldest first
	waits    int                  // claims told to wait; for tests
}

type doneID struct {
	id      string
	expires time.Time
}

func newRecent(max int, ttl time.Duration) *recent {
	return &recent{
		ttl:      ttl,
		max:      max,
		inflight: map[string]chan struct{}{},
		done:     map[string]time.Time{},
	}
}

// claim reports whether the caller should handle id. If not and wait is
// non-nil, another worker is handling id and wait closes when it finishes;
// if wait is nil, id was handled already.
func (r *recent) claim(id string, now time.Time) (claimed bool, wait <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire(now)
	if ch, ok := r.inflight[id]; ok {
		r.waits++
		return false, ch
	}
	if _, ok := r.done[id]; ok {
		return false, nil
	}
	r.inflight[id] = make(chan struct{})
	return true, nil
}

// finish ends a claim. Only a successful one is remembered.
func (r *recent) finish(id string, ok bool, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch, found := r.inflight[id]; found {
		delete(r.inflight, id)
		close(ch)
	}
	if !ok {
		return
	}
	exp := now.Add(r.ttl)
	r.done[id] = exp
	r.order = append(r.order, doneID{id, exp})
	for len(r.order) > r.max {
		r.drop()
	}
	r.expire(now)
}

func (r *recent) expire(now time.Time) {
	for len(r.order) > 0 && !now.Before(r.order[0].expires) {
		r.drop()
	}
}

func (r *recent) drop() {
	d := r.order[0]
	r.order = r.order[1:]
	// The ID may have been finished again later with a later expiry.
	if r.done[d.id].Equal(d.expires) {
		delete(r.done, d.id)
	}
}

func (r *recent) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.done)
}

func (r *recent) waitCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waits
}
