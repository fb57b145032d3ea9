package workstation

import (
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
)

// TestPrewarmDrive: a launch asks the instance to prewarm only a volume
// restored from a snapshot, and only with spec.prewarm.
func TestPrewarmDrive(t *testing.T) {
	for name, tc := range map[string]struct {
		prewarm            *bool
		snapshot, reattach string
		want               bool
	}{
		"restore":                 {prewarm: ptr.To(true), snapshot: "snap-1", want: true},
		"restore, off":            {prewarm: ptr.To(false), snapshot: "snap-1"},
		"restore, unset":          {snapshot: "snap-1"},
		"blank":                   {prewarm: ptr.To(true)},
		"reattach":                {prewarm: ptr.To(true), reattach: "vol-1"},
		"reattach, snapshot kept": {prewarm: ptr.To(true), reattach: "vol-1", snapshot: "snap-1"},
	} {
		t.Run(name, func(t *testing.T) {
			xd := &v1alpha1.XDrive{Spec: v1alpha1.XDriveSpec{Prewarm: tc.prewarm}}
			s := (&scope{st: &v1alpha1.WorkstationStatus{
				Launch: &v1alpha1.LaunchAttempt{SnapshotID: tc.snapshot}, ReattachVolumeID: tc.reattach}}).launch()
			if got := s.prewarmDrive(xd); got != tc.want {
				t.Errorf("prewarmDrive = %t, want %t", got, tc.want)
			}
		})
	}
}

// TestPrewarmed: the instance's report becomes status.drivePrewarm, with
// the end at its rate; a report about another volume is ignored.
func TestPrewarmed(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	const gib = int64(1) << 30
	s := (&scope{st: &v1alpha1.WorkstationStatus{}, now: now}).run()
	s.prewarmed(&bootstrap.Prewarm{VolumeID: "vol-other", BytesRead: gib, BytesTotal: 2 * gib}, "vol-1")
	s.prewarmed(nil, "vol-1")
	if s.st.DrivePrewarm != nil {
		t.Fatalf("drivePrewarm = %+v from another volume's report, or none", s.st.DrivePrewarm)
	}

	s.prewarmed(&bootstrap.Prewarm{VolumeID: "vol-1", BytesRead: 25 * gib, BytesTotal: 100 * gib, BytesPerSecond: 100 << 20}, "vol-1")
	p := s.st.DrivePrewarm
	wantEnd := now.Add(time.Duration(75*1024/100) * time.Second) // 75 GiB at 100 MiB/s
	if p == nil || p.VolumeID != "vol-1" || *p.Percent != 25 || p.EstimatedCompletionTime == nil || !p.EstimatedCompletionTime.Time.Equal(wantEnd) {
		t.Fatalf("drivePrewarm = %+v, want vol-1 at 25%%, ending at %s", p, wantEnd)
	}

	s.prewarmed(&bootstrap.Prewarm{VolumeID: "vol-1", BytesRead: 100*gib - 1, BytesTotal: 100 * gib}, "vol-1")
	if p := s.st.DrivePrewarm; *p.Percent != 99 || p.EstimatedCompletionTime != nil {
		t.Fatalf("one byte short, rate unknown: drivePrewarm = %+v, want 99%% without an end", p)
	}
	s.prewarmed(&bootstrap.Prewarm{VolumeID: "vol-1", BytesRead: 100 * gib, BytesTotal: 100 * gib, BytesPerSecond: 1}, "vol-1")
	if p := s.st.DrivePrewarm; *p.Percent != 100 || p.EstimatedCompletionTime != nil {
		t.Fatalf("every block read: drivePrewarm = %+v, want 100%%", p)
	}
}
