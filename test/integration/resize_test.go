package integration_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
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
