package integration_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/test/harness"
)

// TestContainersPreservedReported (issue #17): the instance's report of a
// failed carry-over, or of Docker's store off the drive, becomes
// ContainersPreserved=False and a warning Event.
func TestContainersPreservedReported(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	h.Create(h.NewDrive("data", 20), h.NewWorkstation("box", "data", []string{"t3.large"}))
	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))
	preserved := func(status metav1.ConditionStatus, reason string) func() (bool, string) {
		return func() (bool, string) {
			c := harness.Condition(h.Workstation("box").Status.Conditions, v1alpha1.ConditionContainersPreserved)
			return c.Status == status && c.Reason == reason, c.Reason + ": " + c.Message
		}
	}
	h.Eventually(converge, "ContainersPreserved True", preserved(metav1.ConditionTrue, v1alpha1.ReasonPreserved))

	h.Agent.SetPreserveErrors("web: docker commit failed; kept with its previous settings", "")
	h.UpdateWorkstation("box", func(ws *v1alpha1.Workstation) { ws.Spec.Tags = map[string]string{"wake": "up"} })
	h.Eventually(converge, "ContainersPreserved False", preserved(metav1.ConditionFalse, v1alpha1.ReasonCarryOverFailed))
	h.Eventually(converge, "a warning Event", func() (bool, string) {
		return h.FindEvent("Workstation", "box", v1alpha1.ReasonCarryOverFailed, "docker commit failed")
	})
	// The containers still run, kept with their previous settings.
	if c := harness.Condition(h.Workstation("box").Status.Conditions, v1alpha1.ConditionContainersRunning); c.Status != metav1.ConditionTrue {
		t.Errorf("ContainersRunning = %s/%s", c.Status, c.Reason)
	}

	h.Agent.SetPreserveErrors("", "Docker uses the containerd image store (driver overlayfs), which keeps layers off the drive")
	h.UpdateWorkstation("box", func(ws *v1alpha1.Workstation) { ws.Spec.Tags = map[string]string{"wake": "store"} })
	h.Eventually(converge, "ContainersPreserved False for the store", preserved(metav1.ConditionFalse, v1alpha1.ReasonStoreOffDrive))
	h.Eventually(converge, "a warning Event for the store", func() (bool, string) {
		return h.FindEvent("Workstation", "box", v1alpha1.ReasonStoreOffDrive, "containerd image store")
	})

	h.Agent.SetPreserveErrors("", "")
	h.UpdateWorkstation("box", func(ws *v1alpha1.Workstation) { ws.Spec.Tags = map[string]string{"wake": "again"} })
	h.Eventually(converge, "ContainersPreserved True again", preserved(metav1.ConditionTrue, v1alpha1.ReasonPreserved))
}
