package integration_test

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/test/harness"
)

// TestScheduleEarlyStart: a scheduled start is measured against its
// target. A first restore teaches the operator how long a launch takes to
// be Ready and the drive to load; a schedule whose start is a few minutes
// ahead then stops the running Workstation (spec.state stays Running),
// launches it the estimated lead before the start, and the Workstation is
// Ready with its drive Hydrated within the minute before the start, having
// launched within a minute of when status said it would.
func TestScheduleEarlyStart(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	drive := h.NewDrive("data", 5)
	drive.Spec.InitializationRateMiBps = 300 // 5 GiB load in about 17 s (the proxy models the rate)
	h.Create(drive, h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "box Ready", h.WorkstationReady("box"))
	h.SetState("box", v1alpha1.WorkstationStateStopped)
	h.Eventually(converge, "drive Archived", h.DrivePhase("data", v1alpha1.XDrivePhaseArchived))

	// A restore, measured.
	h.SetState("box", v1alpha1.WorkstationStateRunning)
	h.Eventually(2*converge, "the restore measured", func() (bool, string) {
		st := h.Workstation("box").Status
		m := measuredOf(st)
		return m != nil && m.InstanceID == st.InstanceID && m.LoadInstanceID == st.InstanceID, fmt.Sprintf("%+v", m)
	})
	m := measuredOf(h.Workstation("box").Status)
	t.Logf("measured: Ready %d s after launch, the 5 GiB restore loaded %d s after Ready", *m.ReadySeconds, *m.LoadSeconds)

	// A start far enough ahead for the lead and a stop well after it, in a zone east of UTC.
	lead := 3 * time.Minute // above the estimate with this measurement: checked below
	tz := "Asia/Kolkata"
	loc, err := time.LoadLocation(tz)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(lead + time.Minute).Truncate(time.Minute).Add(time.Minute).In(loc)
	stop := start.Add(30 * time.Minute)
	h.UpdateWorkstation("box", func(w *v1alpha1.Workstation) {
		w.Spec.Schedule = &v1alpha1.Schedule{TimeZone: tz,
			Start: fmt.Sprintf("%d %d %d %d *", start.Minute(), start.Hour(), start.Day(), int(start.Month())),
			Stop:  fmt.Sprintf("%d %d %d %d *", stop.Minute(), stop.Hour(), stop.Day(), int(stop.Month()))}
	})
	h.Eventually(2*converge, "box stopped by the schedule", func() (bool, string) {
		ws := h.Workstation("box")
		status, reason := harness.ReadyReason(ws.Status.Conditions)
		return ws.Status.Phase == v1alpha1.WorkstationPhaseStopped && reason == v1alpha1.ReasonScheduledStop,
			fmt.Sprintf("phase %s, Ready %s/%s, schedule %+v", ws.Status.Phase, status, reason, ws.Status.Schedule)
	})
	ws := h.Workstation("box")
	sch := ws.Status.Schedule
	if ws.Spec.State != v1alpha1.WorkstationStateRunning || sch == nil || sch.NextStart == nil || !sch.NextStart.Time.Equal(start) ||
		sch.NextStop == nil || !sch.NextStop.Time.Equal(stop) || sch.LaunchAt == nil || sch.Window != v1alpha1.ScheduleWindowClosed {
		t.Fatalf("after the schedule's stop: spec.state %s, status.schedule %+v; want Running, the next start %s and stop %s",
			ws.Spec.State, sch, start, stop)
	}
	launchAt := sch.LaunchAt.Time
	if got := time.Duration(sch.LeadSeconds) * time.Second; got > lead || start.Sub(launchAt) != got {
		t.Fatalf("lead %s (%s), launch at %s: want at most %s, and the start less the lead", got, sch.Basis, launchAt, lead)
	}
	t.Logf("start %s, lead %d s (%s)", start.Format(time.RFC3339), sch.LeadSeconds, sch.Basis)

	// Nothing before the launch time; then Ready and Hydrated by the start.
	var launched, ready, hydrated time.Time
	h.Eventually(time.Until(start.Add(2*time.Minute)), "box Ready and its drive Hydrated", func() (bool, string) {
		ws := h.Workstation("box")
		now := time.Now()
		if ws.Status.Phase != v1alpha1.WorkstationPhaseStopped && launched.IsZero() {
			launched = now
		}
		if status, _ := harness.ReadyReason(ws.Status.Conditions); status == "True" && ready.IsZero() {
			ready = now
		}
		xd := h.Drive("data")
		c := harness.Condition(xd.Status.Conditions, v1alpha1.ConditionHydrated)
		if !ready.IsZero() && c.Status == metav1.ConditionTrue && xd.Status.AttachedTo == ws.Status.InstanceID && hydrated.IsZero() {
			hydrated = now
		}
		return !hydrated.IsZero(), fmt.Sprintf("phase %s, Hydrated %s: %s", ws.Status.Phase, c.Status, c.Message)
	})
	t.Logf("launched %s before the start (planned %s), Ready %s before, Hydrated %s before",
		start.Sub(launched).Round(time.Second), start.Sub(launchAt), start.Sub(ready).Round(time.Second), start.Sub(hydrated).Round(time.Second))
	if launched.Before(launchAt.Add(-time.Second)) || launched.After(launchAt.Add(time.Minute)) {
		t.Errorf("launched at %s, want within a minute after the planned %s", launched.Format(time.RFC3339), launchAt.Format(time.RFC3339))
	}
	if ready.After(start) || hydrated.After(start) || hydrated.Before(start.Add(-time.Minute)) {
		t.Errorf("Ready at %s, Hydrated at %s: want both by the start %s, Hydrated within the minute before it",
			ready.Format(time.RFC3339), hydrated.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	if ok, detail := h.FindEvent("Workstation", "box", v1alpha1.ReasonScheduledStart, "ahead of the scheduled start"); !ok {
		t.Errorf("no ScheduledStart event: %s", detail)
	}
}

func measuredOf(st v1alpha1.WorkstationStatus) *v1alpha1.LaunchMeasurement {
	if st.Schedule == nil {
		return nil
	}
	return st.Schedule.Measured
}
