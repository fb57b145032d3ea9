package xdrive

import (
	"context"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/controller/handoff"
)

// hydrateEvery is how often an initializing volume's progress is read when
// EBS gives no estimate (its default, lazy loading can take hours); with an
// estimate it is read again when EBS expects it done.
const hydrateEvery = time.Minute

// hydrate reads how far the live volume has loaded its blocks from its
// snapshot, until it has all of them, and folds in the holder's prewarm
// (spec.prewarm): every block read is every block loaded. It returns when
// to look again (zero: done).
func (s *scope) hydrate(ctx context.Context) (time.Duration, error) {
	st := s.st
	if in := st.Initialization; in != nil && in.VolumeID == st.VolumeID && in.ReadError == "" && (in.Percent == nil || *in.Percent >= 100) {
		return 0, nil
	}
	pw := s.prewarm()
	if pw != nil && *pw.Percent >= 100 {
		st.Initialization = &v1alpha1.VolumeInitialization{VolumeID: st.VolumeID, Percent: new(int32(100)), Type: v1alpha1.InitializationTypePrewarm}
		s.r.ebsReads.forget(st.VolumeID)
		return 0, nil
	}
	if in := st.Initialization; in != nil && in.VolumeID == st.VolumeID && in.ReadError != "" {
		// The last read failed: the next waits for its own cadence, whatever wakes the drive.
		if wait := s.r.ebsReads.next(st.VolumeID).Sub(s.now); wait > 0 {
			return wait, nil
		}
	}
	if in := st.Initialization; pw != nil && in != nil && in.VolumeID == st.VolumeID && in.ReadError == "" {
		// The holder's reports wake the drive more often than EBS is read.
		if wait := s.r.ebsReads.next(st.VolumeID).Sub(s.now); wait > 0 {
			foldPrewarm(in, pw)
			return wait, nil
		}
	}
	in, found, err := s.describeInitialization(ctx, st.VolumeID)
	if err != nil {
		// An optional read (an older IAM policy may lack the action): reported, retried a minute later, blocking nothing.
		s.readFailed(err)
		return hydrateEvery, nil
	}
	if !found {
		st.Initialization = &v1alpha1.VolumeInitialization{VolumeID: st.VolumeID} // nothing to load: blank, or not reported
		return 0, nil
	}
	pct := in.Percent
	st.Initialization = &v1alpha1.VolumeInitialization{VolumeID: st.VolumeID, Percent: &pct, Type: in.Type}
	if pct >= 100 {
		s.r.ebsReads.forget(st.VolumeID)
		return 0, nil
	}
	again := hydrateEvery
	if in.Estimated {
		eta := metav1.NewTime(s.now.Add(in.Left).Truncate(time.Second))
		st.Initialization.EstimatedCompletionTime = &eta
		again = min(hydrateEvery, max(in.Left, time.Second)) // look again when EBS expects it done
	}
	if pw != nil {
		foldPrewarm(st.Initialization, pw)
		s.r.ebsReads.set(st.VolumeID, s.now.Add(again))
	}
	return again, nil
}

// readFailed records a failed read of the live volume's progress, keeping
// the last progress read, and when to read it again.
func (s *scope) readFailed(err error) {
	st := s.st
	failed := &v1alpha1.VolumeInitialization{VolumeID: st.VolumeID,
		ReadError: truncate(fmt.Sprintf("DescribeVolumeStatus failed (%s): %v", cloud.Classify(err), err), 1024)}
	if in := st.Initialization; in != nil && in.VolumeID == st.VolumeID {
		failed.Percent, failed.Type = in.Percent, in.Type
	}
	st.Initialization = failed
	s.r.ebsReads.set(st.VolumeID, s.now.Add(hydrateEvery))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// prewarm is the holder's report of its instance's read of every block of
// the live volume, if any.
func (s *scope) prewarm() *v1alpha1.DrivePrewarm {
	return handoff.PrewarmOf(s.holder, s.st.VolumeID)
}

// foldPrewarm makes the prewarm's progress the initialization's when it
// leads EBS's report, and its end the initialization's: every block has
// loaded once it has read them all.
func foldPrewarm(in *v1alpha1.VolumeInitialization, pw *v1alpha1.DrivePrewarm) {
	if in.Type == v1alpha1.InitializationTypePrewarm || *pw.Percent > *in.Percent {
		in.Percent, in.Type = new(*pw.Percent), v1alpha1.InitializationTypePrewarm
	}
	in.EstimatedCompletionTime = pw.EstimatedCompletionTime.DeepCopy()
}

// ebsReads remembers when each prewarming volume's initialization is next
// read from EBS, so that its holder's reports add no DescribeVolumeStatus
// calls. Like the requeue that keeps the cadence otherwise, it lives in
// memory: after a restart EBS is read once more.
type ebsReads struct {
	mu   sync.Mutex
	byID map[string]time.Time
}

func (r *ebsReads) next(volumeID string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[volumeID]
}

func (r *ebsReads) set(volumeID string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = map[string]time.Time{}
	}
	for id, t := range r.byID { // volumes gone before they loaded
		if at.Sub(t) > time.Hour {
			delete(r.byID, id)
		}
	}
	r.byID[volumeID] = at
}

func (r *ebsReads) forget(volumeID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byID, volumeID)
}

// hydrated is the Hydrated condition, from status.initialization.
func (s *scope) hydrated() (metav1.ConditionStatus, string, string, bool) {
	st := s.st
	in := st.Initialization
	if in == nil || in.VolumeID != st.VolumeID || (st.Phase != v1alpha1.XDrivePhaseAttached && st.Phase != v1alpha1.XDrivePhaseRestoring) {
		return "", "", "", false
	}
	if in.ReadError != "" {
		msg := "Could not read how far volume " + in.VolumeID + " has initialized; reading it again each minute: " + in.ReadError
		if in.Percent != nil {
			msg = fmt.Sprintf("Volume %s was %d%% initialized at the last read; %s", in.VolumeID, *in.Percent, msg)
		}
		return metav1.ConditionUnknown, v1alpha1.ReasonAWSError, msg, true
	}
	if in.Percent == nil {
		return metav1.ConditionTrue, v1alpha1.ReasonInitialized, "Volume " + in.VolumeID + " has nothing to load from a snapshot", true
	}
	if *in.Percent >= 100 {
		return metav1.ConditionTrue, v1alpha1.ReasonInitialized, "Volume " + in.VolumeID + " is fully initialized", true
	}
	msg := fmt.Sprintf("Volume %s is %d%% initialized (%s)", in.VolumeID, *in.Percent, in.Type)
	if eta := in.EstimatedCompletionTime; eta != nil {
		msg += fmt.Sprintf(", about %s left", eta.Sub(s.now).Round(time.Second))
	}
	return metav1.ConditionFalse, v1alpha1.ReasonInitializing, msg, true
}
