package drives

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// snaps builds a newest-first list from states, named s0 (newest), s1, ...
func snaps(states ...string) []Snapshot {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]Snapshot, len(states))
	for i, st := range states {
		out[i] = Snapshot{ID: fmt.Sprintf("s%d", i), State: st, StartTime: base.Add(-time.Duration(i) * time.Hour)}
	}
	return out
}

func ids(list []Snapshot) []string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		out = append(out, s.ID)
	}
	return out
}

const (
	done    = SnapshotCompleted
	pending = SnapshotPending
	failed  = SnapshotError
)

func TestPrunable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		snaps []Snapshot
		keep  int
		want  []string
	}{
		{"nothing", nil, 2, nil},
		{"within retention", snaps(done, done), 2, nil},
		{"the oldest beyond N", snaps(done, done, done), 2, []string{"s2"}},
		{"all beyond N", snaps(done, done, done, done, done), 2, []string{"s2", "s3", "s4"}},
		{"keep 1 keeps the newest", snaps(done, done, done), 1, []string{"s1", "s2"}},
		{"keep 0 still keeps the newest", snaps(done, done, done), 0, []string{"s1", "s2"}},
		{"negative keep still keeps the newest", snaps(done, done), -3, []string{"s1"}},
		{"a pending newest is not counted", snaps(pending, done, done, done), 2, []string{"s3"}},
		{"a pending one is never pruned", snaps(done, pending, done, pending), 1, []string{"s2"}},
		{"an old pending one is never pruned", snaps(done, done, done, pending), 1, []string{"s1", "s2"}},
		{"only pending", snaps(pending, pending, pending), 1, nil},
		{"failed ones are neither counted nor pruned", snaps(failed, done, failed, done, done), 2, []string{"s4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ids(Prunable(tc.snaps, tc.keep))
			if !slices.Equal(got, tc.want) && (len(got) != 0 || len(tc.want) != 0) {
				t.Fatalf("Prunable(%v, %d) = %v, want %v", states(tc.snaps), tc.keep, got, tc.want)
			}
		})
	}
}

func states(list []Snapshot) []string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		out = append(out, s.ID+"="+s.State)
	}
	return out
}

// TestPrunableProperties checks random newest-first lists: the result is
// exactly the completed snapshots beyond the newest max(keep, 1) completed
// ones, oldest included, and never the newest snapshot or a pending one.
func TestPrunableProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	all := []string{done, done, done, pending, failed}
	for i := range 2000 {
		n := rng.IntN(12)
		st := make([]string, n)
		for j := range st {
			st[j] = all[rng.IntN(len(all))]
		}
		list := snaps(st...)
		keep := rng.IntN(6) - 1
		got := Prunable(list, keep)

		var completed []Snapshot
		for _, s := range list {
			if s.State == done {
				completed = append(completed, s)
			}
		}
		var want []Snapshot
		if k := max(keep, 1); len(completed) > k {
			want = completed[k:]
		}
		if !slices.Equal(ids(got), ids(want)) {
			t.Fatalf("case %d: Prunable(%v, %d) = %v, want %v", i, states(list), keep, ids(got), ids(want))
		}
		for _, s := range got {
			if s.State != done {
				t.Fatalf("case %d: pruned %s in state %s", i, s.ID, s.State)
			}
			if s.ID == list[0].ID || s.ID == completed[0].ID {
				t.Fatalf("case %d: pruned the newest snapshot %s of %v", i, s.ID, states(list))
			}
		}
		if len(completed) > 0 && len(got) > 0 && got[len(got)-1].ID != completed[len(completed)-1].ID {
			t.Fatalf("case %d: the oldest completed snapshot %s is not among the pruned %v", i, completed[len(completed)-1].ID, ids(got))
		}
	}
}
