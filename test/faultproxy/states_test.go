package faultproxy_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/test/moto"
)

func TestInstancePendingThenRunning(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.proxy.InstancePendingDescribes(2)
	id := e.launch(t)
	for i, want := range []ec2types.InstanceStateName{"pending", "pending", "running"} {
		st := e.instanceState(t, id)
		wantCode := map[ec2types.InstanceStateName]int32{"pending": 0, "running": 16}[want]
		if st.Name != want || aws.ToInt32(st.Code) != wantCode {
			t.Errorf("describe %d: state %s (%d), want %s (%d)", i+1, st.Name, aws.ToInt32(st.Code), want, wantCode)
		}
	}

	second := e.launch(t)
	w := ec2.NewInstanceRunningWaiter(e.ec2, func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 50*time.Millisecond
	})
	if err := w.Wait(ctx(t), &ec2.DescribeInstancesInput{InstanceIds: []string{second}}, time.Minute); err != nil {
		t.Fatalf("waiting for running: %v", err)
	}
	if n := e.proxy.Count("DescribeInstances"); n != 3+3 {
		t.Errorf("DescribeInstances count = %d, want 6 (3 direct + 2 pending and 1 running for the waiter)", n)
	}
}

// rawEC2 posts an EC2 query to endpoint and returns the body.
func rawEC2(t *testing.T, endpoint, account string, form url.Values) []byte {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx(t), http.MethodPost, endpoint+"/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0")
	req.Header.Set("x-moto-account-id", account)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, %v: %s", resp.StatusCode, err, body)
	}
	return body
}

func TestRewriteChangesOnlyTheState(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.launch(t)
	e.proxy.InstancePendingDescribes(1)
	form := url.Values{"Action": {"DescribeInstances"}, "Version": {"2016-11-15"}}
	fromMoto := rawEC2(t, moto.Shared(t).URL, e.account, form)
	viaProxy := rawEC2(t, e.proxy.URL(), e.account, form)

	running := []byte("<instanceState><code>16</code><name>running</name></instanceState>")
	pending := []byte("<instanceState><code>0</code><name>pending</name></instanceState>")
	if bytes.Count(fromMoto, running) != 1 {
		t.Fatalf("moto's answer has no single running instanceState:\n%s", fromMoto)
	}
	if want := bytes.Replace(fromMoto, running, pending, 1); !bytes.Equal(viaProxy, want) {
		t.Errorf("proxy answer differs beyond the state:\n got %s\nwant %s", viaProxy, want)
	}
}

func TestVolumeCreatingThenAvailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.proxy.VolumeCreatingDescribes(1)
	vol := e.createVolume(t, "")
	if vol.State != ec2types.VolumeStateCreating {
		t.Errorf("CreateVolume state = %s, want creating", vol.State)
	}
	id := aws.ToString(vol.VolumeId)
	for i, want := range []ec2types.VolumeState{"creating", "available"} {
		if got := e.volumeState(t, id); got != want {
			t.Errorf("describe %d: state %s, want %s", i+1, got, want)
		}
	}

	e.proxy.VolumeCreatingDescribes(0)
	if got := e.createVolume(t, "").State; got != ec2types.VolumeStateAvailable {
		t.Errorf("with the feature off CreateVolume state = %s, want available", got)
	}
}

func TestHeldSnapshotsPendingUntilReleased(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.proxy.HoldSnapshots(true)
	first, second := e.createSnapshot(t), e.createSnapshot(t)
	firstID, secondID := aws.ToString(first.SnapshotId), aws.ToString(second.SnapshotId)
	if first.State != ec2types.SnapshotStatePending {
		t.Errorf("CreateSnapshot state = %s, want pending", first.State)
	}
	if got := e.proxy.CreatedSnapshots(); !slices.Equal(got, []string{firstID, secondID}) {
		t.Errorf("CreatedSnapshots = %v, want [%s %s]", got, firstID, secondID)
	}
	for range 2 {
		if s := e.snapshot(t, firstID); s.State != ec2types.SnapshotStatePending || aws.ToString(s.Progress) == "100%" {
			t.Errorf("held snapshot: state %s, progress %s", s.State, aws.ToString(s.Progress))
		}
	}

	e.proxy.HoldSnapshot(firstID, false)
	if s := e.snapshot(t, firstID); s.State != ec2types.SnapshotStateCompleted {
		t.Errorf("released snapshot: state %s, want completed", s.State)
	}
	if s := e.snapshot(t, secondID); s.State != ec2types.SnapshotStatePending {
		t.Errorf("still held snapshot: state %s, want pending", s.State)
	}

	e.proxy.HoldSnapshots(false)
	if s := e.snapshot(t, secondID); s.State != ec2types.SnapshotStateCompleted || aws.ToString(s.Progress) != "100%" {
		t.Errorf("after release: state %s, progress %s", s.State, aws.ToString(s.Progress))
	}
}

func TestSnapshotPendingDescribes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.proxy.SnapshotPendingDescribes(2)
	snap := e.createSnapshot(t)
	if snap.State != ec2types.SnapshotStatePending {
		t.Errorf("CreateSnapshot state = %s, want pending", snap.State)
	}
	for i, want := range []ec2types.SnapshotState{"pending", "pending", "completed"} {
		if got := e.snapshot(t, aws.ToString(snap.SnapshotId)).State; got != want {
			t.Errorf("describe %d: state %s, want %s", i+1, got, want)
		}
	}
}

func TestFailedSnapshotReportsError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := aws.ToString(e.createSnapshot(t).SnapshotId)
	e.proxy.FailSnapshot(id)
	s := e.snapshot(t, id)
	if s.State != ec2types.SnapshotStateError || aws.ToString(s.StateMessage) == "" {
		t.Errorf("failed snapshot: state %s, message %q", s.State, aws.ToString(s.StateMessage))
	}
	w := ec2.NewSnapshotCompletedWaiter(e.ec2)
	if err := w.Wait(ctx(t), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}}, time.Minute); err == nil {
		t.Error("SnapshotCompleted waiter succeeded on a failed snapshot")
	}
}
