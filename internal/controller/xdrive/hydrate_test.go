package xdrive

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/drives"
)

// ebsProgress answers Initialization with what EBS would say, and counts the calls.
type ebsProgress struct {
	Volumes
	percent int32
	calls   int
}

func (e *ebsProgress) Initialization(context.Context, string) (drives.Initialization, bool, error) {
	e.calls++
	return drives.Initialization{Percent: e.percent, Type: "default"}, true, nil
}

// prewarmScope is an attached drive whose holder reports its prewarm, at now.
type prewarmScope struct {
	t    *testing.T
	ebs  *ebsProgress
	r    *Reconciler
	st   *v1alpha1.XDriveStatus
	ws   *v1alpha1.Workstation
	now  time.Time
	last time.Duration
}

func newPrewarmScope(t *testing.T) *prewarmScope {
	ebs := &ebsProgress{}
	return &prewarmScope{t: t, ebs: ebs, r: &Reconciler{Volumes: ebs},
		st:  &v1alpha1.XDriveStatus{Phase: v1alpha1.XDrivePhaseAttached, VolumeID: "vol-1"},
		ws:  &v1alpha1.Workstation{},
		now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
}

// report sets the holder's report: percent, and the end that far from now (0: none).
func (p *prewarmScope) report(volumeID string, percent int32, left time.Duration) {
	p.ws.Status.DrivePrewarm = &v1alpha1.DrivePrewarm{VolumeID: volumeID, Percent: &percent}
	if left > 0 {
		p.ws.Status.DrivePrewarm.EstimatedCompletionTime = &metav1.Time{Time: p.now.Add(left)}
	}
}

// hydrate runs one hydrate at now, after the given time, and returns the Hydrated condition.
func (p *prewarmScope) hydrate(after time.Duration) (metav1.ConditionStatus, string) {
	p.t.Helper()
	p.now = p.now.Add(after)
	s := &scope{r: p.r, st: p.st, holder: p.ws, now: p.now}
	again, err := s.hydrate(context.Background())
	if err != nil {
		p.t.Fatal(err)
	}
	p.last = again
	status, _, msg, ok := s.hydrated()
	if !ok {
		p.t.Fatal("no Hydrated condition")
	}
	return status, msg
}

// expect checks status.initialization.
func (p *prewarmScope) expect(percent int32, typ string, end time.Time) {
	p.t.Helper()
	in := p.st.Initialization
	if in == nil || in.VolumeID != p.st.VolumeID || in.Percent == nil || *in.Percent != percent || in.Type != typ ||
		(in.EstimatedCompletionTime == nil) != end.IsZero() || !end.IsZero() && !in.EstimatedCompletionTime.Time.Equal(end) {
		p.t.Fatalf("initialization = %+v, want %d%% %s ending at %v", in, percent, typ, end)
	}
}

// TestHydrateFoldsPrewarm: the initialization is the larger of EBS's
// progress and the holder's prewarm, ends when the prewarm does, and is
// complete once the prewarm has read every block; the holder's reports
// cost no EBS read between the reads EBS's cadence makes.
func TestHydrateFoldsPrewarm(t *testing.T) {
	p := newPrewarmScope(t)
	p.ebs.percent = 10
	p.report("vol-1", 30, 10*time.Minute)
	end := p.now.Add(10 * time.Minute)
	status, msg := p.hydrate(0)
	p.expect(30, v1alpha1.InitializationTypePrewarm, end)
	if p.ebs.calls != 1 || p.last != hydrateEvery || status != metav1.ConditionFalse ||
		!strings.Contains(msg, "30% initialized (prewarm), about 10m0s left") {
		t.Fatalf("first read: %d EBS calls, again in %s, Hydrated %s %q", p.ebs.calls, p.last, status, msg)
	}

	p.report("vol-1", 40, 9*time.Minute)
	end = p.now.Add(9 * time.Minute)
	p.hydrate(10 * time.Second)
	p.expect(40, v1alpha1.InitializationTypePrewarm, end)
	if p.ebs.calls != 1 || p.last != hydrateEvery-10*time.Second {
		t.Fatalf("a report before EBS is due: %d EBS calls, again in %s; want 1, at EBS's time", p.ebs.calls, p.last)
	}

	p.ebs.percent = 60 // the user's reads loaded more than the prewarm has read
	p.report("vol-1", 45, 8*time.Minute)
	end = p.now.Add(8 * time.Minute)
	p.hydrate(hydrateEvery)
	p.expect(60, "default", end)
	if p.ebs.calls != 2 {
		t.Fatalf("EBS due: %d calls, want 2", p.ebs.calls)
	}
	p.report("vol-1", 50, 7*time.Minute)
	end = p.now.Add(7 * time.Minute)
	p.hydrate(time.Second)
	p.expect(60, "default", end)

	p.report("vol-1", 100, 0)
	status, msg = p.hydrate(time.Second)
	p.expect(100, v1alpha1.InitializationTypePrewarm, time.Time{})
	if status != metav1.ConditionTrue || p.last != 0 || p.ebs.calls != 2 {
		t.Fatalf("every block read: Hydrated %s %q, again in %s, %d EBS calls; want True, done, no more calls", status, msg, p.last, p.ebs.calls)
	}
	p.ebs.percent = 70
	if status, _ := p.hydrate(hydrateEvery); status != metav1.ConditionTrue || p.ebs.calls != 2 {
		t.Fatalf("after: Hydrated %s, %d EBS calls", status, p.ebs.calls)
	}
}

// TestHydrateIgnoresOtherPrewarm: a report about another volume, or none,
// leaves the initialization to EBS, read at every hydrate as before.
func TestHydrateIgnoresOtherPrewarm(t *testing.T) {
	p := newPrewarmScope(t)
	p.ebs.percent = 10
	p.report("vol-old", 100, 0)
	for i := range 2 {
		if status, _ := p.hydrate(time.Second); status != metav1.ConditionFalse || p.ebs.calls != i+1 {
			t.Fatalf("hydrate %d: Hydrated %s, %d EBS calls", i, status, p.ebs.calls)
		}
		p.expect(10, "default", time.Time{})
	}
	p.ws.Status.DrivePrewarm = nil
	p.hydrate(time.Second)
	p.expect(10, "default", time.Time{})
	if p.ebs.calls != 3 {
		t.Fatalf("%d EBS calls, want 3", p.ebs.calls)
	}
}

// failingProgress fails every read of EBS's progress until told otherwise, and counts the calls.
type failingProgress struct {
	ebsProgress
	err error
}

func (e *failingProgress) Initialization(ctx context.Context, id string) (drives.Initialization, bool, error) {
	if e.err != nil {
		e.calls++
		return drives.Initialization{}, false, e.err
	}
	return e.ebsProgress.Initialization(ctx, id)
}

// TestHydrateReadFailureBlocksNothing: a failed read of EBS's progress is
// no error of the reconcile (the resize behind it runs): it reports
// Hydrated=Unknown with the reason, keeps the last progress, and is read
// again only a minute later, however often the drive wakes meanwhile.
func TestHydrateReadFailureBlocksNothing(t *testing.T) {
	ebs := &failingProgress{ebsProgress: ebsProgress{percent: 40}}
	p := newPrewarmScope(t)
	p.r = &Reconciler{Volumes: ebs}
	p.ebs = &ebs.ebsProgress
	p.ws = nil
	p.hydrate(0)
	p.expect(40, "default", time.Time{})

	ebs.err = &smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "not authorized to perform ec2:DescribeVolumeStatus"}
	status, msg := p.hydrate(hydrateEvery)
	if status != metav1.ConditionUnknown || !strings.Contains(msg, "40% initialized at the last read") || !strings.Contains(msg, "UnauthorizedOperation") ||
		p.last != hydrateEvery || ebs.calls != 2 {
		t.Fatalf("failed read: Hydrated %s %q, again in %s, %d calls; want Unknown with the reason, again in a minute, 2 calls", status, msg, p.last, ebs.calls)
	}
	for range 5 { // wakes within the minute: no read, the condition stays
		if status, _ := p.hydrate(10 * time.Second); status != metav1.ConditionUnknown || ebs.calls != 2 {
			t.Fatalf("a wake within the minute: Hydrated %s, %d calls; want Unknown, still 2", status, ebs.calls)
		}
	}
	if p.last != 10*time.Second {
		t.Fatalf("again in %s, want the rest of the minute (10s)", p.last)
	}
	p.hydrate(10 * time.Second)
	if ebs.calls != 3 {
		t.Fatalf("a minute later: %d calls, want 3", ebs.calls)
	}

	ebs.err, ebs.percent = nil, 100
	if status, _ := p.hydrate(hydrateEvery); status != metav1.ConditionTrue || p.last != 0 || p.st.Initialization.ReadError != "" {
		t.Fatalf("read again: Hydrated %s, again in %s, initialization %+v; want True, done", status, p.last, p.st.Initialization)
	}
}

// TestHydrateFirstReadFails: a drive whose very first read fails has no
// progress yet, and is not taken as having nothing to load: it is read again.
func TestHydrateFirstReadFails(t *testing.T) {
	ebs := &failingProgress{ebsProgress: ebsProgress{percent: 20}, err: &smithy.GenericAPIError{Code: "InternalError"}}
	p := newPrewarmScope(t)
	p.r, p.ebs, p.ws = &Reconciler{Volumes: ebs}, &ebs.ebsProgress, nil
	if status, msg := p.hydrate(0); status != metav1.ConditionUnknown || !strings.Contains(msg, "InternalError") || p.last != hydrateEvery {
		t.Fatalf("first read failed: Hydrated %s %q, again in %s", status, msg, p.last)
	}
	ebs.err = nil
	p.hydrate(hydrateEvery)
	p.expect(20, "default", time.Time{})
}
