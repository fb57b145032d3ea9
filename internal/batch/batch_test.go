package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestConcurrentGetsShareOneFetch(t *testing.T) {
	var calls atomic.Int32
	b := New(20*time.Millisecond, 1000, func(_ context.Context, ids []string) (map[string]int, error) {
		calls.Add(1)
		out := map[string]int{}
		for _, id := range ids {
			if id != "missing" {
				out[id] = len(id)
			}
		}
		return out, nil
	})
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("id-%d", i)
			v, ok, err := b.Get(context.Background(), id)
			if err != nil || !ok || v != len(id) {
				t.Errorf("Get(%s) = %d, %v, %v", id, v, ok, err)
			}
		}()
	}
	wg.Wait()
	if _, ok, _ := b.Get(context.Background(), "missing"); ok {
		t.Error("missing ID reported as found")
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("fetch calls = %d, want 2 (one round of 50, one for the missing ID)", got)
	}
}

func TestFullRoundFetchesAtOnceAndOnlyOnce(t *testing.T) {
	var calls atomic.Int32
	b := New(time.Hour, 3, func(_ context.Context, ids []string) (map[string]bool, error) {
		calls.Add(1)
		out := map[string]bool{}
		for _, id := range ids {
			out[id] = true
		}
		return out, nil
	})
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b", "c"} {
		wg.Add(1)
		go func() { defer wg.Done(); _, _, _ = b.Get(context.Background(), id) }()
	}
	wg.Wait()
	if got := calls.Load(); got != 1 {
		t.Errorf("fetch calls = %d, want 1", got)
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
