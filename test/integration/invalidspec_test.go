package integration_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/test/harness"
)

// TestBootstrapRejectsSpec: a spec the API accepts but the bootstrap cannot
// run (an empty command; a system mount path is now refused at admission)
// stops with InvalidSpec, and nothing is launched.
func TestBootstrapRejectsSpec(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	ws := h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a")
	ws.Spec.Containers = []v1alpha1.Container{{Name: "shell", Image: "busybox:1.36", Command: []string{""}}}
	h.Create(h.NewDrive("data", 10), ws)
	h.Eventually(converge, "InvalidSpec", func() (bool, string) {
		c := meta.FindStatusCondition(h.Workstation("box").Status.Conditions, v1alpha1.ConditionLaunched)
		return c != nil && c.Reason == v1alpha1.ReasonInvalidSpec && strings.Contains(c.Message, "command[0] is empty"), fmt.Sprintf("%+v", c)
	})
	time.Sleep(2 * time.Second)
	if n := h.Proxy.Count("RunInstances"); n != 0 {
		t.Fatalf("RunInstances called %d times for a spec the bootstrap rejects", n)
	}
}
