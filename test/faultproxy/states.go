package faultproxy

import "slices"

const (
	instancesPath           = "DescribeInstancesResponse/reservationSet/item/instancesSet/item"
	volumesPath             = "DescribeVolumesResponse/volumeSet/item"
	snapshotsPath           = "DescribeSnapshotsResponse/snapshotSet/item"
	pendingSnapshotProgress = "50%"
)

// states holds the in-between states moto skips; guarded by Proxy.mu.
type states struct {
	instancePending, volumeCreating, snapshotPending int
	instanceSeen, volumeSeen, snapshotSeen           map[string]int

	holdAll          bool
	snapshotHolds    map[string]bool // per snapshot, overrides holdAll
	failedSnapshots  map[string]bool
	createdSnapshots []string
	created          map[string]bool
}

func newStates() states {
	return states{
		instanceSeen: map[string]int{}, volumeSeen: map[string]int{}, snapshotSeen: map[string]int{},
		snapshotHolds: map[string]bool{}, failedSnapshots: map[string]bool{}, created: map[string]bool{},
	}
}

// InstancePendingDescribes makes the first n DescribeInstances answers that
// include an instance report it pending (code 0) instead of running; 0 = off.
func (p *Proxy) InstancePendingDescribes(n int) { p.setState(&p.states.instancePending, n) }

// VolumeCreatingDescribes makes CreateVolume and the first n DescribeVolumes
// answers that include a volume report it creating instead of available; 0 = off.
func (p *Proxy) VolumeCreatingDescribes(n int) { p.setState(&p.states.volumeCreating, n) }

// SnapshotPendingDescribes makes CreateSnapshot and the first n
// DescribeSnapshots answers that include a snapshot created through the
// proxy report it pending instead of completed; 0 = off.
func (p *Proxy) SnapshotPendingDescribes(n int) { p.setState(&p.states.snapshotPending, n) }

func (p *Proxy) setState(field *int, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	*field = n
}

// HoldSnapshots keeps every snapshot created through the proxy pending while
// hold is true, and drops per-snapshot holds and releases.
func (p *Proxy) HoldSnapshots(hold bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.states.holdAll = hold
	clear(p.states.snapshotHolds)
}

// HoldSnapshot keeps snapshot id pending (hold) or releases it, whatever HoldSnapshots says.
func (p *Proxy) HoldSnapshot(id string, hold bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.states.snapshotHolds[id] = hold
}

// FailSnapshot makes snapshot id report state error from now on.
func (p *Proxy) FailSnapshot(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.states.failedSnapshots[id] = true
}

// CreatedSnapshots returns the IDs of snapshots created through the proxy, oldest first.
func (p *Proxy) CreatedSnapshots() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.states.createdSnapshots)
}

// firstDescribes counts one more describe of id and reports whether it is among the first n.
func firstDescribes(seen map[string]int, id string, n int) bool {
	seen[id]++
	return seen[id] <= n
}

func (s *states) rewriteInstances(doc []byte) []byte {
	if s.instancePending == 0 {
		return doc
	}
	return rewriteItems(doc, instancesPath, func(it item) []edit {
		if !firstDescribes(s.instanceSeen, it.field("instanceId"), s.instancePending) ||
			it.field("instanceState/name") != "running" {
			return nil
		}
		return it.set("instanceState/code", "0", "instanceState/name", "pending")
	})
}

func (s *states) rewriteVolumes(action string, doc []byte) []byte {
	if s.volumeCreating == 0 {
		return doc
	}
	path := volumesPath
	if action == "CreateVolume" {
		path = "CreateVolumeResponse"
	}
	return rewriteItems(doc, path, func(it item) []edit {
		if it.field("status") != "available" ||
			(action != "CreateVolume" && !firstDescribes(s.volumeSeen, it.field("volumeId"), s.volumeCreating)) {
			return nil
		}
		return it.set("status", "creating")
	})
}

func (s *states) rewriteSnapshots(action string, doc []byte) []byte {
	path, describe := snapshotsPath, action == "DescribeSnapshots"
	if !describe {
		path = action + "Response"
	} else if !s.holdAll && s.snapshotPending == 0 && len(s.snapshotHolds) == 0 && len(s.failedSnapshots) == 0 {
		return doc
	}
	return rewriteItems(doc, path, func(it item) []edit {
		id := it.field("snapshotId")
		if !describe && !s.created[id] {
			s.created[id] = true
			s.createdSnapshots = append(s.createdSnapshots, id)
		}
		if it.field("status") != "completed" {
			return nil
		}
		switch s.snapshotView(id, describe) {
		case "error":
			st := it.fields["status"]
			return append(it.set("status", "error"),
				edit{st.end, st.end, leafXML("statusMessage", "Snapshot failed"+injected)})
		case "pending":
			return it.set("status", "pending", "progress", pendingSnapshotProgress)
		}
		return nil
	})
}

// snapshotView is the state snapshot id should show, or "" for moto's own.
func (s *states) snapshotView(id string, describe bool) string {
	if s.failedSnapshots[id] {
		return "error"
	}
	held, explicit := s.snapshotHolds[id]
	if !explicit && s.created[id] {
		held = s.holdAll
		if describe {
			held = firstDescribes(s.snapshotSeen, id, s.snapshotPending) || held
		} else {
			held = held || s.snapshotPending > 0
		}
	}
	if held {
		return "pending"
	}
	return ""
}
