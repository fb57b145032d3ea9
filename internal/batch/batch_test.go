package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// gatedFetch answers every ID, records each round's IDs, and holds the
// first round until release is closed.
type gatedFetch struct {
	mu      sync.Mutex
	rounds  [][]string
	started chan struct{}
	release chan struct{}
}

func newGatedFetch() *gatedFetch {
	return &gatedFetch{started: make(chan struct{}), release: make(chan struct{})}
}

func (g *gatedFetch) fetch(_ context.Context, ids []string) (map[string]int, error) {
	g.mu.Lock()
	g.rounds = append(g.rounds, ids)
	first := len(g.rounds) == 1
	g.mu.Unlock()
	if first {
		close(g.started)
		<-g.release
	}
	out := map[string]int{}
	for _, id := range ids {
		if id != "missing" {
			out[id] = len(id)
		}
	}
	return out, nil
}

// startHeld starts a lookup whose fetch is held, and returns once it is under way.
func (g *gatedFetch) startHeld(ctx context.Context, b *Batcher[int]) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Go(func() { _, _, _ = b.Get(ctx, "first") })
	<-g.started
	return &wg
}

func (g *gatedFetch) roundSizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var sizes []int
	for _, r := range g.rounds {
		sizes = append(sizes, len(r))
	}
	return sizes
}

// TestLoneGetFetchesAtOnce: with no fetch under way, an eager Batcher's
// lookup does not wait for the window (an hour here).
func TestLoneGetFetchesAtOnce(t *testing.T) {
	g := newGatedFetch()
	close(g.release)
	b := NewEager(time.Hour, 1000, g.fetch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if v, ok, err := b.Get(ctx, "abc"); err != nil || !ok || v != 3 {
		t.Fatalf("Get(abc) = %d, %v, %v", v, ok, err)
	}
	if _, ok, err := b.Get(ctx, "missing"); err != nil || ok {
		t.Errorf("missing ID: found %v, %v", ok, err)
	}
}

// TestGetsDuringAFetchShareTheNext: lookups made while a fetch is under way
// gather into one round, fetched when it ends, well before the window.
func TestGetsDuringAFetchShareTheNext(t *testing.T) {
	g := newGatedFetch()
	b := NewEager(time.Hour, 1000, g.fetch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first := g.startHeld(ctx, b)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			id := fmt.Sprintf("id-%d", i)
			if v, ok, err := b.Get(ctx, id); err != nil || !ok || v != len(id) {
				t.Errorf("Get(%s) = %d, %v, %v", id, v, ok, err)
			}
		})
	}
	for b.gathering() < 50 {
		time.Sleep(time.Millisecond)
	}
	close(g.release)
	first.Wait()
	wg.Wait()
	if got := g.roundSizes(); len(got) != 2 || got[0] != 1 || got[1] != 50 {
		t.Errorf("rounds of %v IDs, want [1 50]", got)
	}
}

// TestFullRoundFetchesAtOnceAndOnlyOnce: a round that reaches maxSize is
// fetched without waiting for the fetch under way, once.
func TestFullRoundFetchesAtOnceAndOnlyOnce(t *testing.T) {
	g := newGatedFetch()
	b := NewEager(time.Hour, 3, g.fetch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first := g.startHeld(ctx, b)
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b", "c"} {
		wg.Go(func() {
			if _, ok, err := b.Get(ctx, id); err != nil || !ok {
				t.Errorf("Get(%s): %v, %v", id, ok, err)
			}
		})
	}
	wg.Wait() // while the first fetch is still held
	close(g.release)
	first.Wait()
	if got := g.roundSizes(); len(got) != 2 || got[1] != 3 {
		t.Errorf("rounds of %v IDs, want [1 3]", got)
	}
}

// TestConcurrentGetsShareOneFetch: lookups within the window share a fetch.
func TestConcurrentGetsShareOneFetch(t *testing.T) {
	g := newGatedFetch()
	close(g.release)
	b := New(time.Second, 1000, g.fetch)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			id := fmt.Sprintf("id-%d", i)
			if v, ok, err := b.Get(context.Background(), id); err != nil || !ok || v != len(id) {
				t.Errorf("Get(%s) = %d, %v, %v", id, v, ok, err)
			}
		})
	}
	wg.Wait()
	if got := g.roundSizes(); len(got) != 1 || got[0] != 50 {
		t.Errorf("rounds of %v IDs, want [50]", got)
	}
}

func TestErrorReachesEveryWaiter(t *testing.T) {
	boom := errors.New("boom")
	b := New(time.Millisecond, 10, func(context.Context, []string) (map[string]int, error) { return nil, boom })
	if _, _, err := b.Get(context.Background(), "x"); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}

func TestGetHonoursCancel(t *testing.T) {
	b := New(time.Hour, 10, func(context.Context, []string) (map[string]int, error) { return nil, nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := b.Get(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// gathering is how many IDs wait for the next round (tests).
func (b *Batcher[T]) gathering() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		return 0
	}
	return len(b.pending.ids)
}
