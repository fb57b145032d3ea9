package workstation

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/internal/interruption"
	"github.com/xdrive-io/xdrive/internal/metrics"
)

// NoticeHandler maps interruption events to Workstations. It records each
// notice durably, as an annotation of its own kind, so it survives an operator
// restart and no kind of notice overwrites another.
type NoticeHandler struct {
	Client    client.Client
	Instances *instances.Cache
	// Received, if set, is called when a notice for a known Workstation arrives.
	Received func(ws types.NamespacedName, instanceID string, at time.Time)
}

var _ interruption.Handler = (*NoticeHandler)(nil)

// Handle annotates the Workstation of each instance the event names.
func (h *NoticeHandler) Handle(ctx context.Context, ev interruption.Event) error {
	kind := noticeKind(ev.Kind)
	for _, id := range ev.InstanceIDs {
		inst, ok := h.Instances.Cached(id)
		if !ok || ev.Kind == interruption.StateChange {
			var err error
			if inst, ok, err = h.Instances.Get(ctx, id); err != nil {
				return fmt.Errorf("describe instance %s named by a %s notice: %w", id, ev.Kind, err)
			}
		}
		if !ok || inst.Workstation() == "" {
			logf.FromContext(ctx).V(1).Info("Ignored a notice for an instance the operator does not own", "instance", id)
			continue
		}
		if kind == "" {
			continue // state changes reach the Workstation through the instance cache
		}
		if err := h.annotate(ctx, inst, kind, ev.Time); err != nil {
			return err
		}
	}
	return nil
}

func (h *NoticeHandler) annotate(ctx context.Context, inst instances.Instance, kind v1alpha1.NoticeKind, at time.Time) error {
	ns, name, ok := cloud.SplitObjectKey(inst.Workstation())
	if !ok {
		return nil
	}
	if at.IsZero() {
		at = time.Now()
	}
	recorded := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ws := &v1alpha1.Workstation{}
		if err := h.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, ws); err != nil {
			return err
		}
		if !RecordNotice(ws, kind, inst.ID, inst.Tags[cloud.TagOwnerUID], at) {
			logf.FromContext(ctx).V(1).Info("Notice not recorded: for an earlier object's instance, or it would replace the current instance's",
				"workstation", ns+"/"+name, "instance", inst.ID, "kind", kind)
			return nil
		}
		recorded = true
		patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"metadata":{"resourceVersion":%q,"annotations":{%q:%q}}}`,
			ws.ResourceVersion, NoticeAnnotation(kind), FormatNotice(inst.ID, at)))
		return h.Client.Patch(ctx, ws, patch)
	})
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("record the %s notice of instance %s on Workstation %s/%s: %w", kind, inst.ID, ns, name, err)
	}
	if err != nil || !recorded {
		return nil
	}
	if h.Received != nil {
		h.Received(types.NamespacedName{Namespace: ns, Name: name}, inst.ID, at)
	}
	return nil
}

func noticeKind(k interruption.Kind) v1alpha1.NoticeKind {
	switch k {
	case interruption.SpotInterruption:
		return v1alpha1.NoticeSpotInterruption
	case interruption.Rebalance:
		return v1alpha1.NoticeRebalance
	case interruption.ScheduledChange:
		return v1alpha1.NoticeScheduledChange
	}
	return ""
}

// NoticeAnnotation is the annotation key of one kind of notice.
func NoticeAnnotation(kind v1alpha1.NoticeKind) string {
	return v1alpha1.NoticeAnnotationPrefix + string(kind)
}

// FormatNotice renders a notice annotation's value.
func FormatNotice(instanceID string, at time.Time) string {
	return instanceID + "/" + at.UTC().Format(time.RFC3339Nano)
}

func parseNotice(v string) (string, time.Time, bool) {
	id, ts, ok := strings.Cut(v, "/")
	if !ok || id == "" {
		return "", time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	return id, at, err == nil
}

// RecordNotice says whether a notice about an instance is written on the
// Workstation (one annotation per kind, the newest): not for an instance of
// an earlier object of the same name, and never over an unprocessed notice
// of the Workstation's current or torn-down instance by one of another
// instance, which would erase it before the Workstation read it.
func RecordNotice(ws *v1alpha1.Workstation, kind v1alpha1.NoticeKind, instanceID, ownerUID string, at time.Time) bool {
	if ownerUID != "" && ownerUID != string(ws.UID) {
		return false
	}
	id, when, ok := parseNotice(ws.Annotations[NoticeAnnotation(kind)])
	if !ok || id == instanceID {
		return true
	}
	st := &ws.Status
	mine := func(id string) bool {
		return id != "" && (id == st.InstanceID || st.Teardown != nil && id == st.Teardown.InstanceID)
	}
	taken := slices.ContainsFunc(st.Notices, func(n v1alpha1.ProcessedNotice) bool {
		return n.Kind == kind && n.InstanceID == id && n.Time.Time.Equal(when)
	})
	return taken || !mine(id) || mine(instanceID)
}

// noticeKinds are processed in this order: the spot notice first.
var noticeKinds = []v1alpha1.NoticeKind{v1alpha1.NoticeSpotInterruption, v1alpha1.NoticeScheduledChange, v1alpha1.NoticeRebalance}

// takeNotices turns each kind's newest notice for the current instance into
// a pending teardown trigger, once. It owns the Interrupted condition.
func (s teardownStep) takeNotices() {
	for _, kind := range noticeKinds {
		id, at, ok := parseNotice(s.ws.Annotations[NoticeAnnotation(kind)])
		if !ok || s.processed(kind, id, at) || s.st.InstanceID == "" {
			continue // a notice for an instance not recorded yet waits for it
		}
		s.markProcessed(kind, id, at)
		if id != s.st.InstanceID {
			continue // for an earlier instance
		}
		if td := s.st.Teardown; td != nil && td.InstanceID == id {
			if kind != v1alpha1.NoticeRebalance && td.InterruptedBy == "" {
				td.InterruptedBy = kind // kept with the teardown: a later notice of another instance replaces this one's record
			}
			if kind != v1alpha1.NoticeRebalance && td.Reason == v1alpha1.TeardownVanished {
				// Seen gone before its notice came: it was interrupted, and interruptionPolicy applies.
				td.Reason = v1alpha1.TeardownInterrupted
			}
			if kind != v1alpha1.NoticeRebalance && s.st.Phase == v1alpha1.WorkstationPhaseReleasing {
				// A stop under way meets a notice: the two minutes now bound the flush.
				s.interrupt(kind, at)
				if d := s.flushDeadline(at); d.Before(td.Deadline.Time) {
					td.Deadline = metav1.NewTime(d)
				}
			}
			continue
		}
		if kind == v1alpha1.NoticeRebalance && s.ws.Spec.RebalancePolicy != v1alpha1.RebalancePolicyMove {
			s.event(false, v1alpha1.ReasonRebalancing, "Ignore", "Rebalance recommendation for %s ignored (rebalancePolicy=Ignore)", id)
			continue
		}
		reason := v1alpha1.TeardownInterrupted
		if kind == v1alpha1.NoticeRebalance {
			reason = v1alpha1.TeardownRebalance
		}
		s.interrupt(kind, at)
		s.startTeardown(reason)
		s.st.Teardown.Deadline = metav1.NewTime(s.flushDeadline(at))
	}
}

// flushDeadline ends the flush a notice allows, counted from the notice's own
// time, as AWS counts its two minutes: a notice read late leaves less time.
func (s teardownStep) flushDeadline(noticeTime time.Time) time.Time {
	if noticeTime.After(s.now) {
		noticeTime = s.now // a clock ahead of ours
	}
	return noticeTime.Add(s.r.Timings.FlushTimeout)
}

func (s teardownStep) processed(kind v1alpha1.NoticeKind, id string, at time.Time) bool {
	i := slices.IndexFunc(s.st.Notices, func(n v1alpha1.ProcessedNotice) bool { return n.Kind == kind })
	return i >= 0 && s.st.Notices[i].InstanceID == id && s.st.Notices[i].Time.Time.Equal(at)
}

func (s teardownStep) markProcessed(kind v1alpha1.NoticeKind, id string, at time.Time) {
	n := v1alpha1.ProcessedNotice{Kind: kind, InstanceID: id, Time: metav1.NewTime(at)}
	i := slices.IndexFunc(s.st.Notices, func(n v1alpha1.ProcessedNotice) bool { return n.Kind == kind })
	if i >= 0 {
		s.st.Notices[i] = n
		return
	}
	s.st.Notices = append(s.st.Notices, n)
}

// interrupt records an interruption of the current instance.
func (s teardownStep) interrupt(kind v1alpha1.NoticeKind, at time.Time) {
	st := s.st
	t := metav1.NewTime(at)
	st.LastInterruptionTime = &t
	st.Interruptions++
	reason := v1alpha1.ReasonSpotInterrupted
	if kind == v1alpha1.NoticeRebalance {
		reason = v1alpha1.ReasonRebalancing
	}
	s.reportInterrupted(metav1.ConditionTrue, reason,
		fmt.Sprintf("%s notice for instance %s at %s; the drive is being snapshotted", kind, st.InstanceID, at.UTC().Format(time.RFC3339)))
	s.launch().avoid(s.launch().currentOffering(), reason)
	metrics.Interruptions.WithLabelValues(string(kind)).Inc()
	s.event(true, reason, "Interrupt", "%s notice for instance %s (%s in %s)", kind, st.InstanceID, st.InstanceType, st.AvailabilityZone)
}

func (s launchStep) currentOffering() instances.Offering {
	st := s.st
	return instances.Offering{Type: st.InstanceType, Zone: st.AvailabilityZone, Spot: st.CapacityType == v1alpha1.CapacityTypeSpot}
}

func (s launchStep) avoid(o instances.Offering, reason string) {
	if o.Type == "" {
		return
	}
	st := s.st
	until := metav1.NewTime(s.now.Add(s.r.Timings.AvoidFor))
	st.AvoidOfferings = slices.DeleteFunc(st.AvoidOfferings, func(a v1alpha1.AvoidedOffering) bool { return a.Offering == o.Key() })
	st.AvoidOfferings = append(st.AvoidOfferings, v1alpha1.AvoidedOffering{Offering: o.Key(), Until: until, Reason: reason})
	if len(st.AvoidOfferings) > 64 {
		st.AvoidOfferings = st.AvoidOfferings[len(st.AvoidOfferings)-64:]
	}
}

func (s launchStep) expireAvoided() {
	s.st.AvoidOfferings = slices.DeleteFunc(s.st.AvoidOfferings, func(a v1alpha1.AvoidedOffering) bool {
		return a.Until.Time.Before(s.now)
	})
}

func (s launchStep) avoided(o instances.Offering) bool {
	return slices.ContainsFunc(s.st.AvoidOfferings, func(a v1alpha1.AvoidedOffering) bool { return a.Offering == o.Key() })
}

// reportInterrupted sets Interrupted, its one writer.
func (s teardownStep) reportInterrupted(status metav1.ConditionStatus, reason, msg string) {
	s.set(v1alpha1.ConditionInterrupted, status, reason, msg)
}
