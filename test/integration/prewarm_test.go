package integration_test

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/controller/workstation"
	"github.com/xdrive-io/xdrive/internal/operator"
	"github.com/xdrive-io/xdrive/test/harness"
)

var prewarmConfig = regexp.MustCompile(`(?m)^PREWARM=(\w+)$`)

// TestPrewarm: with spec.prewarm, only the launch that restores the drive
// asks its instance to prewarm. What the instance reports of it becomes the
// drive's initialization (type prewarm, with its end) while EBS's own
// progress stays at 0%, and Hydrated turns True once every block is read.
func TestPrewarm(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t),
		Options: operator.Options{Timings: workstation.Timings{IdleRequeue: 2 * time.Second}}})
	var mu sync.Mutex
	var asked []string     // PREWARM of each launch's user-data
	var percent int64 = -1 // what the instance reports; -1: no prewarm
	h.Proxy.OnCall(func(action string, form url.Values) {
		if action != "RunInstances" {
			return
		}
		ud, err := base64.StdEncoding.DecodeString(form.Get("UserData"))
		files, uerr := bootstrap.Unpack(ud)
		m := prewarmConfig.FindSubmatch(files["etc/xdrive/config"])
		mu.Lock()
		defer mu.Unlock()
		if err != nil || uerr != nil || m == nil {
			asked = append(asked, fmt.Sprintf("unreadable (%v, %v)", err, uerr))
			return
		}
		asked = append(asked, string(m[1]))
	})
	const total = int64(1000) << 30
	h.Agent.SetPrewarm(func(tg agent.Target) *bootstrap.Prewarm {
		mu.Lock()
		defer mu.Unlock()
		if percent < 0 {
			return nil
		}
		return &bootstrap.Prewarm{VolumeID: tg.DriveVolumeID, BytesRead: total * percent / 100, BytesTotal: total, BytesPerSecond: 1 << 30}
	})
	report := func(p int64) {
		mu.Lock()
		defer mu.Unlock()
		percent = p
	}
	h.Start()
	drive := h.NewDrive("data", 1000)
	drive.Spec.Prewarm = ptr.To(true)
	h.Create(drive, h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))
	if c := meta.FindStatusCondition(h.Drive("data").Status.Conditions, v1alpha1.ConditionHydrated); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("blank drive: Hydrated %+v, want True (nothing to load)", c)
	}

	h.Proxy.SetInitialization(50, 0) // EBS's progress of a restore stays at 0%
	h.SetState("box", v1alpha1.WorkstationStateStopped)
	h.Eventually(converge, "drive Archived", h.DrivePhase("data", v1alpha1.XDrivePhaseArchived))
	report(40)
	h.SetState("box", v1alpha1.WorkstationStateRunning)
	var volume string
	h.Eventually(converge, "the prewarm's 40% on the drive", func() (bool, string) {
		st := h.Drive("data").Status
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionHydrated)
		in := st.Initialization
		volume = st.VolumeID
		return c != nil && c.Status == metav1.ConditionFalse && strings.Contains(c.Message, "40% initialized (prewarm)") &&
			in != nil && in.VolumeID == st.VolumeID && in.Type == v1alpha1.InitializationTypePrewarm &&
			in.Percent != nil && *in.Percent == 40 && in.EstimatedCompletionTime != nil, fmt.Sprintf("%+v", st)
	})
	// 600 GiB left at 1 GiB/s: the end is 10 minutes after the last check, as the Workstation recorded it.
	end := h.Drive("data").Status.Initialization.EstimatedCompletionTime.Time
	if left := time.Until(end); left < 5*time.Minute || left > 10*time.Minute {
		t.Errorf("the prewarm's end is %s away, want 10 minutes after a recent check", left.Round(time.Second))
	}
	if p := h.Workstation("box").Status.DrivePrewarm; p == nil || p.VolumeID != volume || *p.Percent != 40 {
		t.Errorf("workstation drivePrewarm = %+v, want 40%% of %s", p, volume)
	}

	report(100)
	h.Eventually(converge, "drive Hydrated by the prewarm", func() (bool, string) {
		st := h.Drive("data").Status
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionHydrated)
		return c != nil && c.Status == metav1.ConditionTrue && st.Initialization.Type == v1alpha1.InitializationTypePrewarm &&
			*st.Initialization.Percent == 100, fmt.Sprintf("%+v", st)
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(asked, []string{"false", "true"}) {
		t.Errorf("PREWARM of the launches %q, want false (blank), true (restore)", asked)
	}
}
