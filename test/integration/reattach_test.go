package integration_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/test/faultproxy"
	"github.com/xdrive-io/xdrive/test/harness"
)

// reattachHarness runs box on drive data in us-east-1a, where t3.large is
// cheapest; after an interruption us-east-1a still offers m5.large at
// 0.0340, 13% above t3.large in us-east-1b (0.0300).
func reattachHarness(t *testing.T, tolerance *int32) (*harness.Harness, v1alpha1.WorkstationStatus) {
	h := interruptionHarness(t)
	h.Proxy.SetSpotPrice("m5.large", "us-east-1a", "0.0340")
	h.Proxy.SetSpotPrice("m5.large", "us-east-1b", "0.0500")
	ws := h.NewWorkstation("box", "data", []string{"t3.large", "m5.large"}, "us-east-1a", "us-east-1b")
	ws.Spec.ReattachPriceTolerancePercent = tolerance
	h.Create(h.NewDrive("data", 10), ws)
	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))
	first := h.Workstation("box").Status
	if first.AvailabilityZone != "us-east-1a" {
		t.Fatalf("first launch in %s, want the cheaper us-east-1a", first.AvailabilityZone)
	}
	return h, first
}

// relaunched waits until box is Ready on an instance other than old.
func relaunched(h *harness.Harness, old string) func() (bool, string) {
	return func() (bool, string) {
		ws := h.Workstation("box")
		ready := meta.IsStatusConditionTrue(ws.Status.Conditions, v1alpha1.ConditionReady)
		return ready && ws.Status.InstanceID != "" && ws.Status.InstanceID != old, fmt.Sprintf("%+v", ws.Status)
	}
}

// TestInterruptionReattachesVolume: after a spot interruption the relaunch
// lands in the volume's zone (within the default 20% tolerance) and gets the
// same volume by AttachVolume while the notice's snapshot is still pending;
// the snapshot then completes and is recorded.
func TestInterruptionReattachesVolume(t *testing.T) {
	h, first := reattachHarness(t, nil)
	volume := h.Drive("data").Status.VolumeID
	h.Proxy.HoldSnapshots(true)
	spotWarning(t, h, first.InstanceID)
	h.Eventually(converge, "relaunched on the same volume", relaunched(h, first.InstanceID))

	ws, xd := h.Workstation("box").Status, h.Drive("data").Status
	snaps := h.Proxy.CreatedSnapshots()
	if ws.AvailabilityZone != "us-east-1a" || ws.InstanceType != "m5.large" || ws.ReattachVolumeID != volume {
		t.Fatalf("relaunched %s in %s reattaching %q, want m5.large in us-east-1a reattaching %s", ws.InstanceType, ws.AvailabilityZone, ws.ReattachVolumeID, volume)
	}
	if xd.VolumeID != volume || xd.AttachedTo != ws.InstanceID || xd.Phase != v1alpha1.XDrivePhaseAttached {
		t.Fatalf("drive %+v, want %s attached to %s", xd, volume, ws.InstanceID)
	}
	if len(snaps) != 1 || xd.TrailingSnapshot == nil || xd.TrailingSnapshot.ID != snaps[0] {
		t.Fatalf("snapshots %v, trailing %+v: want the notice's snapshot, still pending, followed", snaps, xd.TrailingSnapshot)
	}
	vol, ok := h.Volume(volume)
	if !ok || len(vol.Attachments) != 1 || aws.ToString(vol.Attachments[0].InstanceId) != ws.InstanceID {
		t.Fatalf("volume %s in EC2: %+v, want attached to %s", volume, vol.Attachments, ws.InstanceID)
	}
	if n := h.Proxy.Count("AttachVolume"); n != 1 {
		t.Fatalf("AttachVolume calls = %d, want 1", n)
	}
	if ok, msg := h.FindEvent("XDrive", "data", v1alpha1.ReasonReattached, volume); !ok {
		t.Fatalf("no Reattached event: %s", msg)
	}
	if n := len(driveVolumes(h)); n != 1 {
		t.Fatalf("the drive has %d volumes, want 1", n)
	}

	h.Proxy.HoldSnapshots(false)
	h.Eventually(converge, "the notice's snapshot recorded", func() (bool, string) {
		st := h.Drive("data").Status
		return st.TrailingSnapshot == nil && st.LatestSnapshotID == snaps[0], fmt.Sprintf("%+v", st)
	})
}

// TestReattachDeclinedBeyondTolerance: with a 10% tolerance the 13% dearer
// offering in the volume's zone loses; the volume is declined, archived, and
// the relaunch restores from the snapshot in us-east-1b.
func TestReattachDeclinedBeyondTolerance(t *testing.T) {
	h, first := reattachHarness(t, ptr.To[int32](10))
	volume := h.Drive("data").Status.VolumeID
	h.Proxy.HoldSnapshots(true) // the volume stays while the Workstation decides
	spotWarning(t, h, first.InstanceID)
	h.Eventually(converge, "the volume declined", func() (bool, string) {
		st := h.Workstation("box").Status
		return st.DeclinedVolumeID == volume, fmt.Sprintf("%+v", st)
	})
	h.Proxy.HoldSnapshots(false)
	h.Eventually(converge, "relaunched from the snapshot", relaunched(h, first.InstanceID))
	ws, xd := h.Workstation("box").Status, h.Drive("data").Status
	if ws.AvailabilityZone != "us-east-1b" || ws.DeclinedVolumeID != volume || ws.ReattachVolumeID != "" {
		t.Fatalf("relaunched in %s, declined %q, reattaching %q; want us-east-1b, %s declined, none", ws.AvailabilityZone, ws.DeclinedVolumeID, ws.ReattachVolumeID, volume)
	}
	if xd.VolumeID == volume || h.Proxy.Count("AttachVolume") != 0 {
		t.Fatalf("drive volume %s (old %s), %d AttachVolume calls; want a restored volume and none", xd.VolumeID, volume, h.Proxy.Count("AttachVolume"))
	}
	if _, exists := h.Volume(volume); exists {
		t.Fatalf("declined volume %s still exists", volume)
	}
}

// TestReattachFailureRestoresFromSnapshot: EC2 refuses the AttachVolume; the
// drive-less instance is ended and the next launch restores from the snapshot.
func TestReattachFailureRestoresFromSnapshot(t *testing.T) {
	h, first := reattachHarness(t, nil)
	volume := h.Drive("data").Status.VolumeID
	refused := h.Proxy.Inject(faultproxy.Rule{Action: "AttachVolume", Times: 1,
		Fault: faultproxy.APIError(http.StatusBadRequest, "IncorrectInstanceState", "the instance is not 'running'")})
	h.Proxy.HoldSnapshots(true) // the volume stays until the reattach is tried
	spotWarning(t, h, first.InstanceID)
	h.Eventually(converge, "the reattach refused", func() (bool, string) { return refused.Fired() == 1, "not yet" })
	h.Proxy.HoldSnapshots(false)
	h.Eventually(converge, "the drive on a restored volume", func() (bool, string) {
		ws, xd := h.Workstation("box"), h.Drive("data")
		ready := meta.IsStatusConditionTrue(ws.Status.Conditions, v1alpha1.ConditionReady)
		return ready && xd.Status.VolumeID != "" && xd.Status.VolumeID != volume, fmt.Sprintf("ws %+v\nxd %+v", ws.Status, xd.Status)
	})
	if refused.Fired() != 1 {
		t.Fatalf("the AttachVolume fault fired %d times, want 1", refused.Fired())
	}
	ws := h.Workstation("box").Status
	if ws.DeclinedVolumeID != volume {
		t.Fatalf("declinedVolumeID = %q, want %s", ws.DeclinedVolumeID, volume)
	}
	if ok, msg := h.FindEvent("Workstation", "box", v1alpha1.ReasonReattachFailed, volume); !ok {
		t.Fatalf("no ReattachFailed event: %s", msg)
	}
	if n := len(h.LiveWorkstationInstances("box")); n != 1 {
		t.Fatalf("%d live instances, want 1: the drive-less one is ended", n)
	}
	if n := len(driveVolumes(h)); n != 1 {
		t.Fatalf("the drive has %d volumes, want 1", n)
	}
}

// TestWarmPeriodAfterStop: with keepVolumeForMinutes a stop keeps the volume (phase
// Kept, keptUntil shown) and a start reattaches it; once the period ends the
// volume is deleted.
func TestWarmPeriodAfterStop(t *testing.T) {
	drive := &v1alpha1.XDrive{ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: v1alpha1.XDriveSpec{SizeGiB: 10, KeepVolumeForMinutes: 60}}
	h := readyWorkstation(t, drive)
	first := h.Workstation("box").Status
	volume := h.Drive("data").Status.VolumeID
	h.SetState("box", v1alpha1.WorkstationStateStopped)
	h.Eventually(converge, "drive Kept", h.DrivePhase("data", v1alpha1.XDrivePhaseKept))
	xd := h.Drive("data").Status
	if xd.VolumeID != volume || xd.KeptUntil == nil || xd.LatestSnapshotID == "" || time.Until(xd.KeptUntil.Time) < 50*time.Minute {
		t.Fatalf("kept drive %+v, want volume %s kept about an hour after a completed snapshot", xd, volume)
	}
	if vol, ok := h.Volume(volume); !ok || vol.State != ec2types.VolumeStateAvailable {
		t.Fatalf("kept volume %s: exists %t, state %s; want available", volume, ok, vol.State)
	}

	h.SetState("box", v1alpha1.WorkstationStateRunning)
	h.Eventually(converge, "started on the kept volume", relaunched(h, first.InstanceID))
	if st := h.Drive("data").Status; st.VolumeID != volume || st.KeptUntil != nil || h.Proxy.Count("AttachVolume") != 1 {
		t.Fatalf("after the start the drive is on %s (keptUntil %v, %d AttachVolume); want %s reattached", st.VolumeID, st.KeptUntil,
			h.Proxy.Count("AttachVolume"), volume)
	}

	for range 10 {
		xd := h.Drive("data")
		xd.Spec.KeepVolumeForMinutes = 1
		if err := h.Client.Update(context.Background(), xd); err == nil {
			break
		}
	}
	h.SetState("box", v1alpha1.WorkstationStateStopped)
	h.Eventually(2*converge, "drive Archived after the period", func() (bool, string) {
		var notes []string
		for _, e := range h.Events("XDrive", "data") {
			notes = append(notes, e.Reason+": "+e.Note)
		}
		ok, msg := h.DrivePhase("data", v1alpha1.XDrivePhaseArchived)()
		return ok, msg + fmt.Sprintf("\n%+v\nevents:\n%s", h.Drive("data").Status, strings.Join(notes, "\n"))
	})
	if _, exists := h.Volume(volume); exists {
		t.Fatalf("volume %s still exists after the warm period", volume)
	}
	if ok, msg := h.FindEvent("XDrive", "data", v1alpha1.ReasonKept, volume); !ok {
		t.Fatalf("no Kept event: %s", msg)
	}
}

// TestProvisionedInitialization: a restore passes initializationRateMiBps to
// RunInstances, and the drive shows its hydration (Hydrated, status.initialization)
// until EBS reports every block loaded.
func TestProvisionedInitialization(t *testing.T) {
	drive := &v1alpha1.XDrive{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: v1alpha1.XDriveSpec{SizeGiB: 10, InitializationRateMiBps: 300}}
	h := readyWorkstation(t, drive)
	var mu sync.Mutex
	var rates []string
	h.Proxy.OnCall(func(action string, form url.Values) {
		if action == "RunInstances" {
			mu.Lock()
			defer mu.Unlock()
			for k, v := range form {
				if strings.HasSuffix(k, ".Ebs.VolumeInitializationRate") {
					rates = append(rates, v...)
				}
			}
		}
	})
	if c := meta.FindStatusCondition(h.Drive("data").Status.Conditions, v1alpha1.ConditionHydrated); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("blank drive: Hydrated %+v, want True (nothing to load)", c)
	}
	h.Proxy.SetInitialization(50, 0) // restores stay at 0% until released
	h.SetState("box", v1alpha1.WorkstationStateStopped)
	h.Eventually(converge, "drive Archived", h.DrivePhase("data", v1alpha1.XDrivePhaseArchived))
	h.SetState("box", v1alpha1.WorkstationStateRunning)
	h.Eventually(converge, "restored drive hydrating", func() (bool, string) {
		st := h.Drive("data").Status
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionHydrated)
		return c != nil && c.Status == metav1.ConditionFalse && st.Initialization != nil && st.Initialization.Percent != nil,
			fmt.Sprintf("%+v", st)
	})
	st := h.Drive("data").Status
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionHydrated)
	in := st.Initialization
	if *in.Percent != 0 || in.Type != "provisioned-rate" || in.EstimatedCompletionTime == nil || !strings.Contains(c.Message, "0% initialized") {
		t.Fatalf("initialization %+v, Hydrated %q; want 0%% at the provisioned rate, with an estimate", in, c.Message)
	}
	mu.Lock()
	if !slices.Equal(rates, []string{"300"}) {
		t.Fatalf("RunInstances VolumeInitializationRate values %v, want [300]", rates)
	}
	mu.Unlock()

	h.Proxy.SetInitialization(50, 1e9) // read again at the estimate (34 s for 10 GiB at 300 MiB/s)
	h.Eventually(converge, "drive Hydrated", func() (bool, string) {
		st := h.Drive("data").Status
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionHydrated)
		return c != nil && c.Status == metav1.ConditionTrue && *st.Initialization.Percent == 100, fmt.Sprintf("%+v", st)
	})
}

// driveVolumes are the live volumes of the drive: tagged with its UID, at the drive's device or detached.
func driveVolumes(h *harness.Harness) []ec2types.Volume {
	uid := string(h.Drive("data").UID)
	var out []ec2types.Volume
	for _, v := range h.Volumes() {
		atDrive := len(v.Attachments) == 0 || aws.ToString(v.Attachments[0].Device) == bootstrap.DriveDevice
		if cloud.TagMap(v.Tags)[cloud.TagDriveUID] == uid && atDrive {
			out = append(out, v)
		}
	}
	return out
}
