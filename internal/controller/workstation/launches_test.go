package workstation

import (
	"testing"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// TestLaunchMayHaveRun: a dropped launch is kept as unconfirmed unless this
// process wrote its record and never called RunInstances for it.
func TestLaunchMayHaveRun(t *testing.T) {
	cases := []struct {
		name          string
		wrote, called int32
		attempt       int32
		want          bool
	}{
		{"written by another process (before a restart): its answer may be lost", 0, 0, 1, true},
		{"written here, never called", 1, 0, 1, false},
		{"written here, called", 1, 1, 1, true},
		{"written here, another attempt called", 1, 2, 1, false},
		{"another attempt written here", 2, 0, 1, true},
	}
	for _, c := range cases {
		var calls launchCalls
		if c.wrote != 0 {
			calls.wrote("uid-1", c.wrote)
		}
		if c.called != 0 {
			calls.calling("uid-1", c.called)
		}
		if got := calls.mayHaveRun("uid-1", &v1alpha1.LaunchAttempt{Attempt: c.attempt}); got != c.want {
			t.Errorf("%s: mayHaveRun = %v, want %v", c.name, got, c.want)
		}
	}
}
