package integration_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/controller/workstation"
	"github.com/xdrive-io/xdrive/internal/sshx"
	"github.com/xdrive-io/xdrive/test/harness"
)

// TestHostKeyPerLaunch (issue #18 §3): every launch gets its own SSH host
// key, the one the operator pins; IMDS's hop limit is 1 unless the spec opts in.
func TestHostKeyPerLaunch(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	h.Create(h.NewDrive("data", 20), h.NewWorkstation("box", "data", []string{"t3.large"}))

	// launch waits for a Ready instance and returns it with its user-data's host key.
	launch := func() (ec2types.Instance, string) {
		t.Helper()
		h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))
		id := h.Workstation("box").Status.InstanceID
		inst, ok := h.Instance(id)
		if !ok {
			t.Fatalf("instance %s not in EC2", id)
		}
		attr, err := h.EC2.DescribeInstanceAttribute(context.Background(), &ec2.DescribeInstanceAttributeInput{
			InstanceId: aws.String(id), Attribute: ec2types.InstanceAttributeNameUserData})
		if err != nil {
			t.Fatal(err)
		}
		ud, err := base64.StdEncoding.DecodeString(aws.ToString(attr.UserData.Value))
		if err != nil {
			t.Fatal(err)
		}
		files, err := bootstrap.Unpack(ud)
		if err != nil {
			t.Fatal(err)
		}
		pub := publicOf(t, files["etc/ssh/ssh_host_ed25519_key"])
		if pinned := h.Agent.HostKey(aws.ToString(inst.PublicIpAddress)); pinned != pub {
			t.Fatalf("the operator pins %q for %s, but its user-data holds %q", pinned, id, pub)
		}
		return inst, pub
	}
	hopLimit := func(inst ec2types.Instance) int32 {
		t.Helper()
		m := inst.MetadataOptions
		if m == nil || m.HttpTokens != ec2types.HttpTokensStateRequired {
			t.Fatalf("instance %s metadata options = %+v, want IMDSv2 tokens required", aws.ToString(inst.InstanceId), m)
		}
		return aws.ToInt32(m.HttpPutResponseHopLimit)
	}

	first, firstKey := launch()
	if got := hopLimit(first); got != 1 {
		t.Errorf("hop limit = %d by default, want 1", got)
	}
	secret := &corev1.Secret{}
	if err := h.Client.Get(context.Background(), types.NamespacedName{Namespace: h.Namespace, Name: v1alpha1.SSHSecretName("box")}, secret); err != nil {
		t.Fatal(err)
	}
	for k, v := range secret.Data {
		if strings.HasPrefix(k, "host-key") || strings.Contains(string(v), firstKey) {
			t.Errorf("the Secret keeps a host key (%s); keys are per launch", k)
		}
	}

	h.SetState("box", v1alpha1.WorkstationStateStopped)
	h.Eventually(converge, "workstation Stopped", h.WorkstationPhase("box", v1alpha1.WorkstationPhaseStopped))
	h.UpdateWorkstation("box", func(ws *v1alpha1.Workstation) {
		ws.Spec.State = v1alpha1.WorkstationStateRunning
		ws.Spec.ContainersReachInstanceMetadata = ptr.To(true)
	})
	second, secondKey := launch()
	if aws.ToString(second.InstanceId) == aws.ToString(first.InstanceId) {
		t.Fatal("no second launch")
	}
	if secondKey == firstKey {
		t.Error("the second launch reuses the first launch's host key")
	}
	if got := hopLimit(second); got != 2 {
		t.Errorf("hop limit = %d with containersReachInstanceMetadata, want 2", got)
	}
}

func publicOf(t *testing.T, privatePEM []byte) string {
	t.Helper()
	if len(privatePEM) == 0 {
		t.Fatal("the user-data holds no host key")
	}
	signer, err := ssh.ParsePrivateKey(privatePEM)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
}

// TestSSHSecretMustBeOwned: a Secret with the SSH Secret's name and label
// that this Workstation does not control (planted, or left by another) is
// not used: no instance is launched with its key, and the Workstation says why.
func TestSSHSecretMustBeOwned(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	clientKey, clientPub, err := sshx.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	planted := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.Namespace, Name: v1alpha1.SSHSecretName("box"),
			Labels: map[string]string{workstation.SecretLabelKey: workstation.SecretLabelValue}},
		Data: map[string][]byte{v1alpha1.SSHSecretClientKey: clientKey, "client-key.pub": []byte(clientPub)},
	}
	h.Create(planted, h.NewDrive("data", 20), h.NewWorkstation("box", "data", []string{"t3.large"}))
	h.Eventually(converge, "the planted Secret refused", func() (bool, string) {
		c := harness.Condition(h.Workstation("box").Status.Conditions, v1alpha1.ConditionLaunched)
		return strings.Contains(c.Message, "is not controlled by Workstation box"), fmt.Sprintf("Launched=%s %q", c.Status, c.Message)
	})
	if got := h.WorkstationInstances("box"); len(got) != 0 {
		t.Fatalf("launched %v with a Secret the Workstation does not own", harness.InstanceIDs(got))
	}
}
