package fakeec2

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// Kind is what a Transition does.
type Kind string

// Transition kinds.
const (
	// KindInstanceRunning: a pending instance starts running.
	KindInstanceRunning Kind = "instance-running"
	// KindInstanceTerminated: a shutting-down instance is terminated; its volumes
	// with DeleteOnTermination are deleted, the others detached (available).
	KindInstanceTerminated Kind = "instance-terminated"
	// KindSnapshotCompleted: a pending snapshot completes (100%).
	KindSnapshotCompleted Kind = "snapshot-completed"
	// KindSnapshotFailed: a pending copy that FailCopies marked ends in error.
	KindSnapshotFailed Kind = "snapshot-failed"
	// KindModificationOptimizing: a volume modification goes from modifying to optimizing.
	KindModificationOptimizing Kind = "modification-optimizing"
	// KindModificationCompleted: a volume modification goes from optimizing to completed.
	KindModificationCompleted Kind = "modification-completed"
	// KindVolumeInitialized: a volume restored from a snapshot has loaded all its blocks.
	KindVolumeInitialized Kind = "volume-initialized"
)

// Transition is one pending step of EC2's own work. ResourceID is an
// instance, snapshot or volume ID (a volume's, for modifications).
type Transition struct {
	Kind       Kind
	ResourceID string
}

func (t Transition) String() string { return string(t.Kind) + " " + t.ResourceID }

// Transitions lists the steps EC2 could take next, sorted by resource ID and
// kind; steps of held resources are left out.
func (f *Fake) Transitions() []Transition {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.transitions()
}

func (f *Fake) transitions() []Transition {
	var out []Transition
	add := func(kind Kind, id string) {
		if !f.held[id] {
			out = append(out, Transition{Kind: kind, ResourceID: id})
		}
	}
	for _, i := range f.instances.order {
		switch i.state {
		case StatePending:
			add(KindInstanceRunning, i.id)
		case StateShuttingDown:
			add(KindInstanceTerminated, i.id)
		}
	}
	for _, s := range f.snapshots.order {
		switch {
		case s.state != SnapshotPending || s.deleted:
		case s.fails:
			add(KindSnapshotFailed, s.id)
		default:
			add(KindSnapshotCompleted, s.id)
		}
	}
	for _, v := range f.volumes.order {
		if !v.initialized && !v.deleted {
			add(KindVolumeInitialized, v.id)
		}
	}
	for _, m := range f.modifications {
		switch {
		case f.volumes.byID[m.volumeID].deleted:
		case m.state == ModificationModifying:
			add(KindModificationOptimizing, m.volumeID)
		case m.state == ModificationOptimizing:
			add(KindModificationCompleted, m.volumeID)
		}
	}
	slices.SortFunc(out, func(a, b Transition) int {
		return cmp.Or(cmp.Compare(a.ResourceID, b.ResourceID), cmp.Compare(a.Kind, b.Kind))
	})
	return out
}

// Apply takes one step listed by Transitions.
func (f *Fake) Apply(t Transition) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.transitions(), t) {
		return fmt.Errorf("fakeec2: %s is not a pending transition", t)
	}
	f.apply(t)
	return nil
}

func (f *Fake) apply(t Transition) {
	switch t.Kind {
	case KindInstanceRunning:
		f.instances.byID[t.ResourceID].state = StateRunning
	case KindInstanceTerminated:
		f.terminate(f.instances.byID[t.ResourceID])
	case KindSnapshotCompleted:
		s := f.snapshots.byID[t.ResourceID]
		s.state, s.completionTime = SnapshotCompleted, f.now()
	case KindSnapshotFailed:
		s := f.snapshots.byID[t.ResourceID]
		s.state, s.message = SnapshotError, "the copy failed (FailCopies)"
	case KindVolumeInitialized:
		f.volumes.byID[t.ResourceID].initialized = true
	case KindModificationOptimizing, KindModificationCompleted:
		mods := f.modificationsOf(t.ResourceID)
		m := mods[len(mods)-1]
		if m.state = ModificationOptimizing; t.Kind == KindModificationCompleted {
			m.state, m.endTime = ModificationCompleted, f.now()
		}
	}
}

// Settle applies transitions, first listed first, until none is left but those held.
func (f *Fake) Settle() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ts := f.transitions(); len(ts) > 0; ts = f.transitions() {
		f.apply(ts[0])
	}
}

// SettleEvery settles the fake every interval until ctx ends, as EC2 moves
// its resources on by itself.
func (f *Fake) SettleEvery(ctx context.Context, interval time.Duration) {
	for ctx.Err() == nil {
		f.Settle()
		time.Sleep(interval)
	}
}

// Hold keeps every transition of the resource (instance, volume or snapshot
// ID) out of Transitions and Settle until Release.
func (f *Fake) Hold(resourceID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held[resourceID] = true
}

// Release undoes Hold.
func (f *Fake) Release(resourceID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.held, resourceID)
}
