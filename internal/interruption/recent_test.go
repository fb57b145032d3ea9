package interruption

import (
	"testing"
	"time"
)

func TestRecentClaim(t *testing.T) {
	r := newRecent(3, time.Minute)
	now := time.Unix(1000, 0)

	ok, wait := r.claim("a", now)
	if !ok || wait != nil {
		t.Fatalf("first claim = %v, %v", ok, wait)
	}
	ok, wait = r.claim("a", now)
	if ok || wait == nil {
		t.Fatalf("claim while in flight = %v, %v; want a wait channel", ok, wait)
	}
	r.finish("a", false, now)
	select {
	case <-wait:
	default:
		t.Fatal("wait channel not closed by finish")
	}
	if ok, _ := r.claim("a", now); !ok {
		t.Fatal("a failed claim must allow handling again")
	}
	r.finish("a", true, now)
	if ok, wait := r.claim("a", now.Add(59*time.Second)); ok || wait != nil {
		t.Fatalf("claim of a handled ID = %v, %v; want skip", ok, wait)
	}
	if ok, _ := r.claim("a", now.Add(time.Minute)); !ok {
		t.Fatal("handled ID must be forgotten after the TTL")
	}
}

func TestRecentBounded(t *testing.T) {
	r := newRecent(3, time.Hour)
	now := time.Unix(1000, 0)
	for _, id := range []string{"a", "b", "c", "d"} {
		if ok, _ := r.claim(id, now); !ok {
			t.Fatalf("claim %s failed", id)
		}
		r.finish(id, true, now)
	}
	if n := r.len(); n != 3 {
		t.Fatalf("remembered %d IDs, want 3", n)
	}
	if ok, _ := r.claim("a", now); !ok {
		t.Fatal("oldest ID should have been evicted")
	}
	if ok, _ := r.claim("d", now); ok {
		t.Fatal("newest ID should be remembered")
	}
}
