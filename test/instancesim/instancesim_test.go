package instancesim_test

import (
	"context"
	"encoding/base64"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/test/instancesim"
	"github.com/xdrive-io/xdrive/test/moto"
	"github.com/xdrive-io/xdrive/test/sshd"
)

// TestInstanceLifecycle launches an instance in moto with real user-data and
// drives its simulation through the real SSH agent: status, release, a
// restore from a snapshot on a second instance, and a spot notice there; a
// third instance, in another region, restores a copy of the snapshot.
func TestInstanceLifecycle(t *testing.T) {
	if _, err := os.Stat(sshd.Binary); err != nil || os.Geteuid() != 0 {
		skipOrFail(t, "the simulated instances need root and "+sshd.Binary)
	}
	srv := moto.Shared(t)
	account := moto.NewAccount()
	api := ec2.NewFromConfig(moto.Config(srv.URL, account))
	const otherRegion = "us-west-2"
	west := ec2.NewFromConfig(moto.Config(srv.URL, account), func(o *ec2.Options) { o.Region = otherRegion })
	cluster := "sim-" + account
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var mu sync.Mutex
	var logs strings.Builder
	sim, err := instancesim.Start(instancesim.Options{EC2: api, Cluster: cluster, Dir: t.TempDir(),
		Elsewhere: map[string]instancesim.EC2API{otherRegion: west},
		Log: func(id, msg string) {
			mu.Lock()
			defer mu.Unlock()
			logs.WriteString(id + " | " + msg + "\n")
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sim.Stop()
		if t.Failed() {
			t.Logf("simulator log:\n%s", logs.String())
		}
	}()

	hostKey, hostPub := sshd.GenerateKey(t)
	clientKey, clientPub := sshd.GenerateKey(t)
	launch := func(api *ec2.Client, snapshot string) (*instancesim.Instance, agent.Target) {
		t.Helper()
		ud, err := bootstrap.Render(bootstrap.Params{
			HostKeyPEM: string(hostKey), AuthorizedKey: clientPub, WorkstationKey: "default/box", BlankDrive: snapshot == "",
			Containers: []v1alpha1.Container{{Name: "shell", Image: "ubuntu:24.04"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		id := runInstance(ctx, t, api, cluster, ud, snapshot)
		var in *instancesim.Instance
		for in == nil {
			var ok bool
			if in, ok = sim.Instance(id); !ok {
				select {
				case <-ctx.Done():
					t.Fatalf("instance %s was not simulated", id)
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
		if err := in.Wait(ctx); err != nil {
			t.Fatalf("booting %s: %v", id, err)
		}
		return in, agent.Target{Address: in.PrivateIP, HostKey: hostPub, ClientKey: clientKey, DriveVolumeID: in.VolumeID}
	}
	ssh := agent.SSH{Resolver: sim.Resolve}

	// ready waits for the bootstrap to finish, as the operator does: over SSH.
	ready := func(target agent.Target) agent.Status {
		t.Helper()
		var st agent.Status
		waitFor(ctx, t, "the bootstrap to be ready", func() bool {
			var err error
			st, err = ssh.Status(ctx, target)
			if err != nil {
				t.Fatal(err)
			}
			return st.Phase == bootstrap.PhaseReady || st.Phase == bootstrap.PhaseFailed
		})
		return st
	}

	first, target := launch(api, "")
	st := ready(target)
	if st.Phase != bootstrap.PhaseReady || !st.Mounted || st.VolumeID != first.VolumeID || st.Containers["shell"] != "running" {
		t.Fatalf("status of the first instance = %+v", st)
	}
	if err := first.AppendDrive("/v1", "notes.txt", "written on "+first.ID); err != nil {
		t.Fatal(err)
	}
	// The idle stop's warning reaches the instance's users: a status call
	// with the idle check brings its commands, then notify runs them.
	idle := target
	idle.Idle = &bootstrap.IdleCheck{CPULoad: "0.5", GPUPercent: 10, BytesPerSecond: 4096}
	if st, err := ssh.Status(ctx, idle); err != nil || len(st.Activity) == 0 {
		t.Fatalf("status with the idle check = %+v, %v", st, err)
	}
	at := time.Now().Add(5 * time.Minute)
	deadline := at.UTC().Format(time.RFC3339)
	idle.Notice = &bootstrap.Notice{Kind: bootstrap.NoticeKindIdleStop, Deadline: at}
	if err := ssh.Notify(ctx, idle); err != nil {
		t.Fatalf("notify: %v", err)
	}
	if notice, err := first.File("/run/xdrive/notice"); err != nil || !strings.Contains(notice, `"deadline":"`+deadline+`"`) {
		t.Errorf("the notice = %q, %v; want the deadline %s", notice, err, deadline)
	}
	if walls := first.Walls(); !strings.Contains(walls, "default/box") || !strings.Contains(walls, "sudo xdrive-ctl extend 1h") {
		t.Errorf("wall messages: %q", walls)
	}
	if st, err := ssh.Release(ctx, target); err != nil || !st.Released || st.Mounted || st.SpotNotice {
		t.Fatalf("release = %+v, %v", st, err)
	}
	if st, err := ssh.Status(ctx, target); err != nil || !st.Released || st.Mounted {
		t.Fatalf("status after release = %+v, %v", st, err)
	}
	if status, release := first.SSHCommands(); status < 2 || release != 1 || !first.Released() {
		t.Errorf("SSH commands = %d status, %d release; released %v", status, release, first.Released())
	}

	snap, err := api.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(first.VolumeID)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{first.ID}}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the first instance powered off", func() bool { return len(sim.Running()) == 0 })
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if _, err := sim.Resolve(short, first.PrivateIP); err == nil {
		t.Error("a powered-off instance's address still resolves")
	}

	second, target := launch(api, aws.ToString(snap.SnapshotId))
	if st := ready(target); st.Phase != bootstrap.PhaseReady || st.Containers["shell"] != "running" {
		t.Fatalf("status of the second instance = %+v", st)
	}
	if got, err := second.ReadDrive("/v1", "notes.txt"); err != nil || got != "written on "+first.ID+"\n" {
		t.Errorf("notes on the restored drive = %q, %v", got, err)
	}
	sim.Notice(second.ID)
	waitFor(ctx, t, "xdrive-watch to release the drive on the spot notice", second.Released)

	// The operator copies a snapshot to another region with tags that name its source.
	cp, err := west.CopySnapshot(ctx, &ec2.CopySnapshotInput{SourceSnapshotId: snap.SnapshotId, SourceRegion: aws.String(moto.Region),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: []ec2types.Tag{
			{Key: aws.String(cloud.TagCopiedFrom), Value: snap.SnapshotId},
			{Key: aws.String(cloud.TagCopiedFromRegion), Value: aws.String(moto.Region)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	third, target := launch(west, aws.ToString(cp.SnapshotId))
	if st := ready(target); st.Phase != bootstrap.PhaseReady || third.Region != otherRegion {
		t.Fatalf("status of the third instance = %+v, in region %q", st, third.Region)
	}
	if got, err := third.ReadDrive("/v1", "notes.txt"); err != nil || got != "written on "+first.ID+"\n" {
		t.Errorf("notes on the drive restored from a copy in %s = %q, %v", otherRegion, got, err)
	}
	if got := sim.Launched(); len(got) != 3 || got[0] != first.ID || got[1] != second.ID || got[2] != third.ID {
		t.Errorf("Launched() = %v", got)
	}
	if err := sim.Failed(); err != nil {
		t.Error(err)
	}
}

// runInstance launches one instance of the cluster with the drive at
// bootstrap.DriveDevice, blank or from a snapshot.
func runInstance(ctx context.Context, t *testing.T, api *ec2.Client, cluster string, userData []byte, snapshot string) string {
	t.Helper()
	images, err := api.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	if err != nil || len(images.Images) == 0 {
		t.Fatalf("no image to launch: %v", err)
	}
	drive := &ec2types.EbsBlockDevice{VolumeSize: aws.Int32(10), DeleteOnTermination: aws.Bool(false)}
	if snapshot != "" {
		drive.SnapshotId = aws.String(snapshot)
	}
	out, err := api.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: images.Images[0].ImageId, InstanceType: ec2types.InstanceTypeT3Large, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		UserData:            aws.String(base64.StdEncoding.EncodeToString(userData)),
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{DeviceName: aws.String(bootstrap.DriveDevice), Ebs: drive}},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance,
			Tags: []ec2types.Tag{{Key: aws.String(cloud.TagCluster), Value: aws.String(cluster)}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Instances[0].InstanceId)
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func TestMain(m *testing.M) { moto.Main(m) }
