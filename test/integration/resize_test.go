package integration_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/test/faultproxy"
	"github.com/xdrive-io/xdrive/test/harness"
)

// TestGrowAttachedDrive: raising sizeGiB on an attached drive runs ModifyVolume
// and reports Resizing until done.
func TestGrowAttachedDrive(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	h.Create(h.NewDrive("data", 10), h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))

	for range 10 {
		xd := h.Drive("data")
		xd.Spec.SizeGiB = 30
		if err := h.Client.Update(context.Background(), xd); err == nil {
			break
		}
	}
	h.Eventually(converge, "volume grown", func() (bool, string) {
		xd := h.Drive("data")
		c := meta.FindStatusCondition(xd.Status.Conditions, v1alpha1.ConditionResizing)
		vol, _ := h.Volume(xd.Status.VolumeID)
		return c != nil && c.Reason == v1alpha1.ReasonResized && xd.Status.SizeGiB == 30 && aws.ToInt32(vol.Size) == 30,
			fmt.Sprintf("condition %+v, status size %d, EC2 size %d", c, xd.Status.SizeGiB, aws.ToInt32(vol.Size))
	})
	if n := h.Proxy.Count("ModifyVolume"); n != 1 {
		t.Fatalf("ModifyVolume calls = %d, want 1", n)
	}
	if status, reason := harness.ReadyReason(h.Drive("data").Status.Conditions); status != "True" || reason != v1alpha1.ReasonAttached {
		t.Fatalf("drive Ready = %s/%s after resize, want True/Attached", status, reason)
	}
}

// TestHydrateReadFailureBlocksNothing: with DescribeVolumeStatus denied (an
// older IAM policy without the action), the drive reports Hydrated=Unknown
// with the reason, the resize behind the read still runs, and at idle the
// failing read costs at most one call a minute.
func TestHydrateReadFailureBlocksNothing(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	h.Create(h.NewDrive("data", 10), h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))
	h.SetState("box", v1alpha1.WorkstationStateStopped)
	h.Eventually(converge, "stopped", h.WorkstationPhase("box", v1alpha1.WorkstationPhaseStopped))
	// The next start restores the drive from its snapshot, whose progress cannot be read.
	h.Proxy.SetInitialization(50, 0) // restores stay initializing
	denied := h.Proxy.Inject(faultproxy.Rule{Action: "DescribeVolumeStatus",
		Fault: faultproxy.APIError(http.StatusForbidden, "UnauthorizedOperation", "You are not authorized to perform this operation.")})
	h.SetState("box", v1alpha1.WorkstationStateRunning)
	h.Eventually(converge, "workstation Ready again", h.WorkstationReady("box"))
	h.Eventually(converge, "Hydrated=Unknown with the reason", func() (bool, string) {
		c := meta.FindStatusCondition(h.Drive("data").Status.Conditions, v1alpha1.ConditionHydrated)
		return c != nil && c.Status == metav1.ConditionUnknown && strings.Contains(c.Message, "UnauthorizedOperation"), fmt.Sprintf("Hydrated %+v", c)
	})

	xd := h.Drive("data")
	xd.Spec.SizeGiB = 30
	if err := h.Client.Update(context.Background(), xd); err != nil {
		t.Fatal(err)
	}
	h.Eventually(converge, "volume grown behind the failing read", func() (bool, string) {
		xd := h.Drive("data")
		vol, _ := h.Volume(xd.Status.VolumeID)
		return xd.Status.SizeGiB == 30 && aws.ToInt32(vol.Size) == 30, fmt.Sprintf("status size %d, EC2 size %d", xd.Status.SizeGiB, aws.ToInt32(vol.Size))
	})

	// Idle: the Workstation's status checks and the drive's wakes within a minute cost no read.
	before := denied.Fired()
	h.Consistently(20*time.Second, "at most one read within 20 s", func() (bool, string) {
		n := denied.Fired() - before
		return n <= 1, fmt.Sprintf("%d DescribeVolumeStatus calls", n)
	})
	if status, reason := harness.ReadyReason(h.Drive("data").Status.Conditions); status != "True" || reason != v1alpha1.ReasonAttached {
		t.Fatalf("drive Ready = %s/%s with the read failing, want True/Attached", status, reason)
	}
}
