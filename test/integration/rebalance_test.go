package integration_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/test/harness"
)

func rebalanceRecommendation(t *testing.T, h *harness.Harness, instanceID string) {
	t.Helper()
	eb := eventbridge.NewFromConfig(h.AWSConfig())
	out, err := eb.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		Source:     aws.String("aws.ec2"),
		DetailType: aws.String("EC2 Instance Rebalance Recommendation"),
		Detail:     aws.String(fmt.Sprintf(`{"instance-id":%q}`, instanceID)),
	}}})
	if err != nil {
		t.Fatalf("PutEvents: %v", err)
	}
	if out.FailedEntryCount != 0 {
		t.Fatalf("PutEvents: %d entries failed", out.FailedEntryCount)
	}
}

// TestRebalancePolicies: Ignore keeps the instance; Move snapshots and
// relaunches on another offering before any interruption.
func TestRebalancePolicies(t *testing.T) {
	h := interruptionHarness(t)
	ignore := h.NewWorkstation("stay", "d1", []string{"t3.large"}, "us-east-1a", "us-east-1b")
	move := h.NewWorkstation("move", "d2", []string{"t3.large"}, "us-east-1a", "us-east-1b")
	move.Spec.RebalancePolicy = v1alpha1.RebalancePolicyMove
	h.Create(h.NewDrive("d1", 10), h.NewDrive("d2", 10), ignore, move)
	h.Eventually(converge, "both Ready", func() (bool, string) {
		a, _ := h.WorkstationReady("stay")()
		b, _ := h.WorkstationReady("move")()
		return a && b, "waiting"
	})
	stay, moving := h.Workstation("stay").Status, h.Workstation("move").Status

	rebalanceRecommendation(t, h, stay.InstanceID)
	rebalanceRecommendation(t, h, moving.InstanceID)
	h.Eventually(converge, "move relaunched on another offering", func() (bool, string) {
		ws := h.Workstation("move")
		ready := meta.IsStatusConditionTrue(ws.Status.Conditions, v1alpha1.ConditionReady)
		return ready && ws.Status.InstanceID != moving.InstanceID, fmt.Sprintf("%+v", ws.Status)
	})
	ws := h.Workstation("move")
	if ws.Status.AvailabilityZone == moving.AvailabilityZone {
		t.Fatalf("moved Workstation relaunched in the same zone %s", ws.Status.AvailabilityZone)
	}
	if h.Drive("d2").Status.LatestSnapshotID == "" {
		t.Fatal("the drive was not snapshotted before the move")
	}
	time.Sleep(2 * time.Second)
	kept := h.Workstation("stay").Status
	if kept.InstanceID != stay.InstanceID || kept.Interruptions != 0 || h.Drive("d1").Status.LatestSnapshotID != "" {
		t.Fatalf("rebalancePolicy Ignore changed the Workstation: instance %s→%s, interruptions %d",
			stay.InstanceID, kept.InstanceID, kept.Interruptions)
	}
}
