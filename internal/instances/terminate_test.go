package instances_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/test/fakeec2"
)

// TestTerminateGathersCalls: terminations asked for at once by many
// reconciles are one TerminateInstances call; an instance EC2 no longer
// knows does not keep the others from ending.
func TestTerminateGathersCalls(t *testing.T) {
	for name, withUnknown := range map[string]bool{"all known": false, "one unknown": true} {
		t.Run(name, func(t *testing.T) {
			const cluster = "c1"
			fake := fakeec2.New(fakeec2.Options{Cluster: cluster})
			l := &instances.Launcher{API: fake, Cluster: cluster, TerminateWindow: time.Second} // wide: every goroutine joins the round
			var launched []instances.Instance
			for i := range 8 {
				inst, err := l.Launch(context.Background(), instances.LaunchRequest{
					Workstation: fmt.Sprintf("ns/ws%d", i), WorkstationUID: fmt.Sprintf("uid-%d", i),
					Drive: fmt.Sprintf("ns/d%d", i), DriveUID: fmt.Sprintf("d-uid-%d", i), DriveName: fmt.Sprintf("d%d", i),
					Offering: instances.Offering{Type: "t3.large", Zone: "us-east-1a", Spot: true},
					ImageID:  "ami-00000000000000a01",
					Volume:   instances.DriveVolume{SizeGiB: 20, VolumeType: "gp3"},
					Attempt:  1,
				})
				if err != nil {
					t.Fatal(err)
				}
				launched = append(launched, inst)
			}
			fake.Settle()
			targets := launched
			if withUnknown {
				ghost := launched[0]
				ghost.ID = "i-00000000000dead00"
				targets = append(targets, ghost)
			}
			fake.ResetCalls()
			var wg sync.WaitGroup
			for _, inst := range targets {
				wg.Go(func() {
					if err := l.Terminate(context.Background(), inst); err != nil {
						t.Errorf("Terminate(%s): %v", inst.ID, err)
					}
				})
			}
			wg.Wait()
			want := 1
			if withUnknown {
				want = 1 + len(targets) // the refused call, then each alone
			}
			if got := fake.Calls()["TerminateInstances"]; got != want {
				t.Errorf("%d TerminateInstances calls for %d instances, want %d", got, len(targets), want)
			}
			out, err := fake.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
			if err != nil {
				t.Fatal(err)
			}
			ended := 0
			for _, r := range out.Reservations {
				for _, i := range r.Instances {
					if s := string(i.State.Name); s == instances.StateShuttingDown || s == instances.StateTerminated {
						ended++
					}
				}
			}
			if ended != len(launched) {
				t.Errorf("%d of %d instances ended", ended, len(launched))
			}
		})
	}
}

// TestTerminateRefusesForeign: an instance without the cluster's tag is never terminated.
func TestTerminateRefusesForeign(t *testing.T) {
	fake := fakeec2.New(fakeec2.Options{Cluster: "c1"})
	l := &instances.Launcher{API: fake, Cluster: "c1", TerminateWindow: 10 * time.Millisecond}
	err := l.Terminate(context.Background(), instances.Instance{ID: "i-0000000000000f00", Tags: map[string]string{cloud.TagCluster: "other"}})
	if err == nil || fake.Calls()["TerminateInstances"] != 0 {
		t.Errorf("Terminate of a foreign instance: %v, %d calls", err, fake.Calls()["TerminateInstances"])
	}
}
