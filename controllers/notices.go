package controllers

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/internal/interruption"
)

// NoticeHandler maps interruption events to Workstations. It records each
// notice durably, as an annotation, so it survives an operator restart.
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
				return err
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

func (h *NoticeHandler) annotate(ctx context.Context, inst instances.Instance, kind string, at time.Time) error {
	ns, name, ok := cloud.SplitObjectKey(inst.Workstation())
	if !ok {
		return nil
	}
	if at.IsZero() {
		at = time.Now()
	}
	key := types.NamespacedName{Namespace: ns, Name: name}
	value := fmt.Sprintf("%s/%s/%s", kind, inst.ID, at.UTC().Format(time.RFC3339))
	ws := &v1alpha1.Workstation{}
	ws.Namespace, ws.Name = ns, name
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, InterruptionAnnotation, value))
	if err := h.Client.Patch(ctx, ws, patch); err != nil {
		return client.IgnoreNotFound(err)
	}
	if h.Received != nil {
		h.Received(key, inst.ID, at)
	}
	return nil
}

func noticeKind(k interruption.Kind) string {
	switch k {
	case interruption.SpotInterruption:
		return NoticeSpot
	case interruption.Rebalance:
		return NoticeRebalance
	case interruption.ScheduledChange:
		return NoticeScheduled
	}
	return ""
}
