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

// heldTerminate holds the first TerminateInstances call until released.
type heldTerminate struct {
	*fakeec2.Fake
	first            sync.Once
	started, release chan struct{}
}

func (h *heldTerminate) TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, opts ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	h.first.Do(func() { close(h.started); <-h.release })
	return h.Fake.TerminateInstances(ctx, in, opts...)
}

// TestTerminateGathersCalls: terminations asked for while one is under way
// gather into one TerminateInstances call; an instance EC2 no longer knows
// does not keep the others from ending.
func TestTerminateGathersCalls(t *testing.T) {
	for name, withUnknown := range map[string]bool{"all known": false, "one unknown": true} {
		t.Run(name, func(t *testing.T) {
			const cluster = "c1"
			fake := fakeec2.New(fakeec2.Options{Cluster: cluster})
			held := &heldTerminate{Fake: fake, started: make(chan struct{}), release: make(chan struct{})}
			l := &instances.Launcher{API: held, Cluster: cluster, TerminateWindow: time.Minute}
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
			terminate := func(inst instances.Instance) {
				if err := l.Terminate(context.Background(), inst); err != nil {
					t.Errorf("Terminate(%s): %v", inst.ID, err)
				}
			}
			var first, rest sync.WaitGroup
			first.Go(func() { terminate(launched[1]) }) // held under way
			<-held.started
			for _, inst := range targets {
				if inst.ID != launched[1].ID {
					rest.Go(func() { terminate(inst) })
				}
			}
			time.Sleep(time.Second) // the rest gather behind the held call
			close(held.release)
			first.Wait()
			rest.Wait()
			want := 2 // the held one, then the rest together
			if withUnknown {
				want = 2 + len(targets) - 1 // the rest refused for the unknown one, then each alone
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
