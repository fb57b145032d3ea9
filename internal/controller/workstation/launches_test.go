package workstation

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// TestLaunchMayHaveRun: a dropped launch is kept as unconfirmed unless this
// process began before it was recorded and never called RunInstances for it.
func TestLaunchMayHaveRun(t *testing.T) {
	up := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	launch := func(at time.Time, attempt int32) *v1alpha1.LaunchAttempt {
		return &v1alpha1.LaunchAttempt{Attempt: attempt, StartTime: metav1.NewTime(at)}
	}
	cases := []struct {
		name    string
		started bool
		called  int32
		launch  *v1alpha1.LaunchAttempt
		want    bool
	}{
		{"nothing reconciled yet: unknown", false, 0, launch(up.Add(time.Minute), 1), true},
		{"recorded before this process began: a restart may have lost its answer", true, 0, launch(up.Add(-time.Minute), 1), true},
		{"recorded in the second this process began", true, 0, launch(up, 1), true},
		{"recorded since, never called", true, 0, launch(up.Add(time.Minute), 1), false},
		{"recorded since, called", true, 1, launch(up.Add(time.Minute), 1), true},
		{"recorded since, another attempt called", true, 2, launch(up.Add(time.Minute), 1), false},
	}
	for _, c := range cases {
		var calls launchCalls
		if c.started {
			calls.start(up)
			calls.start(up.Add(time.Hour)) // only the first counts
		}
		if c.called != 0 {
			calls.calling("uid-1", c.called)
		}
		if got := calls.mayHaveRun("uid-1", c.launch); got != c.want {
			t.Errorf("%s: mayHaveRun = %v, want %v", c.name, got, c.want)
		}
	}
}
