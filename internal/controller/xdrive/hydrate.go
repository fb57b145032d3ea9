package xdrive

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// hydrateEvery is how often an initializing volume's progress is read when
// EBS gives no estimate (its default, lazy loading can take hours); with an
// estimate it is read again when EBS expects it done.
const hydrateEvery = time.Minute

// hydrate reads how far the live volume has loaded its blocks from its
// snapshot, until it has all of them. It returns when to look again (zero: done).
func (s *scope) hydrate(ctx context.Context) (time.Duration, error) {
	st := s.st
	if in := st.Initialization; in != nil && in.VolumeID == st.VolumeID && (in.Percent == nil || *in.Percent >= 100) {
		return 0, nil
	}
	in, found, err := s.r.Volumes.Initialization(ctx, st.VolumeID)
	if err != nil {
		return 0, err
	}
	if !found {
		st.Initialization = &v1alpha1.VolumeInitialization{VolumeID: st.VolumeID} // nothing to load: blank, or not reported
		return 0, nil
	}
	pct := in.Percent
	st.Initialization = &v1alpha1.VolumeInitialization{VolumeID: st.VolumeID, Percent: &pct, Type: in.Type}
	if pct >= 100 {
		return 0, nil
	}
	if !in.Estimated {
		return hydrateEvery, nil
	}
	eta := metav1.NewTime(s.now.Add(in.Left).Truncate(time.Second))
	st.Initialization.EstimatedCompletionTime = &eta
	return min(hydrateEvery, max(in.Left, time.Second)), nil // look again when EBS expects it done
}

// hydrated is the Hydrated condition, from status.initialization.
func (s *scope) hydrated() (metav1.ConditionStatus, string, string, bool) {
	st := s.st
	in := st.Initialization
	if in == nil || in.VolumeID != st.VolumeID || (st.Phase != v1alpha1.XDrivePhaseAttached && st.Phase != v1alpha1.XDrivePhaseRestoring) {
		return "", "", "", false
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
