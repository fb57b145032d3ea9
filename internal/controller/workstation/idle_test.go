package workstation

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
)

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

// TestIdleAfter: the Workstation's own window, capped by the class's
// maximum; the class's default, else its maximum; else off.
func TestIdleAfter(t *testing.T) {
	for name, tc := range map[string]struct {
		own, def, limit time.Duration
		want            time.Duration
	}{
		"off":                 {},
		"own":                 {own: time.Hour, want: time.Hour},
		"class default":       {def: 30 * time.Minute, want: 30 * time.Minute},
		"own over default":    {own: time.Hour, def: 30 * time.Minute, want: time.Hour},
		"own capped":          {own: 5 * time.Hour, limit: 4 * time.Hour, want: 4 * time.Hour},
		"maximum when absent": {limit: 4 * time.Hour, want: 4 * time.Hour},
		"default under max":   {def: time.Hour, limit: 4 * time.Hour, want: time.Hour},
	} {
		t.Run(name, func(t *testing.T) {
			ws := &v1alpha1.Workstation{}
			if tc.own > 0 {
				ws.Spec.IdleStop = &v1alpha1.IdleStop{After: dur(tc.own)}
			}
			cls := &v1alpha1.WorkstationClass{}
			if tc.def > 0 || tc.limit > 0 {
				cls.Spec.IdleStop = &v1alpha1.ClassIdleStop{}
				if tc.def > 0 {
					cls.Spec.IdleStop.DefaultAfter = dur(tc.def)
				}
				if tc.limit > 0 {
					cls.Spec.IdleStop.MaxAfter = dur(tc.limit)
				}
			}
			s := (&scope{ws: ws, class: &classParams{class: cls}}).idle()
			if got := s.idleAfter(); got != tc.want {
				t.Errorf("idleAfter = %s, want %s", got, tc.want)
			}
			if v := idleViolations(ws.Spec, cls.Spec); (len(v) > 0) != (tc.limit > 0 && tc.own > tc.limit) {
				t.Errorf("idleViolations = %v", v)
			}
		})
	}
}

// TestIdleBounds: a Workstation's busy thresholds below the class's
// minimums, or a checkCommand the class forbids, are violations; and the
// check the instance runs stays within the class's bounds all the same
// (the minimums raise the defaults, and the forbidden command is not sent).
func TestIdleBounds(t *testing.T) {
	bounds := &v1alpha1.ClassIdleStop{MaxAfter: dur(time.Hour), MinCPULoad: "0.8", MinGPUUtilizationPercent: 20,
		MinNetworkBytesPerSecond: 8192, AllowCheckCommand: ptr.To(false)}
	for name, tc := range map[string]struct {
		own    *v1alpha1.IdleStop
		bounds *v1alpha1.ClassIdleStop
		want   []string // words of the violations, in order
		check  bootstrap.IdleCheck
	}{
		"defaults raised": {own: &v1alpha1.IdleStop{}, bounds: bounds,
			check: bootstrap.IdleCheck{CPULoad: "0.8", GPUPercent: 20, BytesPerSecond: 8192}},
		"within": {own: &v1alpha1.IdleStop{CPULoad: "1.5", GPUUtilizationPercent: 50, NetworkBytesPerSecond: 10000}, bounds: bounds,
			check: bootstrap.IdleCheck{CPULoad: "1.5", GPUPercent: 50, BytesPerSecond: 10000}},
		"at the minimums": {own: &v1alpha1.IdleStop{CPULoad: "0.80", GPUUtilizationPercent: 20, NetworkBytesPerSecond: 8192}, bounds: bounds,
			check: bootstrap.IdleCheck{CPULoad: "0.80", GPUPercent: 20, BytesPerSecond: 8192}},
		"below every minimum": {own: &v1alpha1.IdleStop{CPULoad: "0", GPUUtilizationPercent: 1, NetworkBytesPerSecond: 1, CheckCommand: "true"}, bounds: bounds,
			want:  []string{"cpuLoad 0 is below", "gpuUtilizationPercent 1 is below", "networkBytesPerSecond 1 is below", "allowCheckCommand: false"},
			check: bootstrap.IdleCheck{CPULoad: "0.8", GPUPercent: 20, BytesPerSecond: 8192}},
		"no bounds": {own: &v1alpha1.IdleStop{After: dur(2 * time.Hour), CPULoad: "0", CheckCommand: "true"},
			bounds: &v1alpha1.ClassIdleStop{DefaultAfter: dur(time.Hour)},
			check:  bootstrap.IdleCheck{CPULoad: "0", GPUPercent: defaultGPUPercent, BytesPerSecond: defaultBytesPerSecond, Command: "true"}},
	} {
		t.Run(name, func(t *testing.T) {
			ws := &v1alpha1.Workstation{Spec: v1alpha1.WorkstationSpec{IdleStop: tc.own}}
			cls := &v1alpha1.WorkstationClass{Spec: v1alpha1.WorkstationClassSpec{IdleStop: tc.bounds}}
			got := idleViolations(ws.Spec, cls.Spec)
			if len(got) != len(tc.want) {
				t.Fatalf("idleViolations = %q, want %d mentioning %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("violation %d = %q, want it to mention %q", i, got[i], w)
				}
			}
			s := (&scope{ws: ws, class: &classParams{class: cls}}).idle()
			c := s.idleCheck()
			if c == nil {
				t.Fatal("idleCheck = nil with the class's window")
			}
			if c.CPULoad != tc.check.CPULoad || c.GPUPercent != tc.check.GPUPercent || c.BytesPerSecond != tc.check.BytesPerSecond || c.Command != tc.check.Command {
				t.Errorf("idle check: cpu %s, gpu %d, bytes %d, command %q; want cpu %s, gpu %d, bytes %d, command %q",
					c.CPULoad, c.GPUPercent, c.BytesPerSecond, c.Command, tc.check.CPULoad, tc.check.GPUPercent, tc.check.BytesPerSecond, tc.check.Command)
			}
		})
	}
}

// TestActivity: only a ready instance whose every signal is idle is idle.
func TestActivity(t *testing.T) {
	idle := []bootstrap.Signal{{Name: "ssh", State: bootstrap.SignalIdle}, {Name: "gpu", State: bootstrap.SignalIdle}}
	ready := func(signals ...bootstrap.Signal) agent.Result {
		return agent.Result{Finished: time.Now(), Status: agent.Status{Phase: bootstrap.PhaseReady, Activity: signals}}
	}
	for name, tc := range map[string]struct {
		last   agent.Result
		active bool
		signal v1alpha1.IdleSignal
	}{
		"all idle":     {last: ready(idle...)},
		"unreachable":  {last: agent.Result{Finished: time.Now(), Err: errors.New("refused")}, active: true, signal: v1alpha1.IdleSignalUnreachable},
		"booting":      {last: agent.Result{Finished: time.Now(), Status: agent.Status{Phase: bootstrap.PhaseStartingDocker}}, active: true, signal: v1alpha1.IdleSignalBooting},
		"unreported":   {last: ready(), active: true, signal: v1alpha1.IdleSignalUnreported},
		"unknown gpu":  {last: ready(idle[0], bootstrap.Signal{Name: "gpu", State: bootstrap.SignalUnknown}), active: true, signal: v1alpha1.IdleSignalGPU},
		"unknown name": {last: ready(bootstrap.Signal{Name: "x\"y", State: bootstrap.SignalIdle}), active: true, signal: v1alpha1.IdleSignalUnreported},
		"ssh session":  {last: ready(bootstrap.Signal{Name: "ssh", State: bootstrap.SignalActive}, idle[1]), active: true, signal: v1alpha1.IdleSignalSSH},
	} {
		t.Run(name, func(t *testing.T) {
			signal, _, active := activity(tc.last)
			if active != tc.active || signal != tc.signal {
				t.Errorf("activity = %s, %t; want %s, %t", signal, active, tc.signal, tc.active)
			}
		})
	}
}

// TestIdleStoppedResume: a resume annotation at or after the stop ends it; an older one does not.
func TestIdleStoppedResume(t *testing.T) {
	stop := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	for annotation, want := range map[string]bool{
		"":                     true,
		"2026-11-30T09:59:59Z": true,
		"2026-11-30T10:00:00Z": false,
		"2026-11-30T10:05:00Z": false,
		"tomorrow":             true,
	} {
		ws := &v1alpha1.Workstation{}
		ws.Generation = 1
		ws.Annotations = map[string]string{v1alpha1.ResumeAnnotation: annotation}
		ws.Status.Idle = &v1alpha1.IdleState{StopTime: &metav1.Time{Time: stop}}
		if got := IdleStopped(ws); got != want {
			t.Errorf("IdleStopped with resume %q = %t, want %t", annotation, got, want)
		}
		if got := Wants(ws); got == want {
			t.Errorf("Wants with resume %q = %t, want %t", annotation, got, !want)
		}
	}
}

// TestIdleStopComesAfterItsWarning: the stop is due at the window's end (or
// at a later extension), but never sooner than the warning's lead after a
// warning sent at or after its due time.
func TestIdleStopComesAfterItsWarning(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	at := func(m int) *metav1.Time { return &metav1.Time{Time: t0.Add(time.Duration(m) * time.Minute)} }
	for name, tc := range map[string]struct {
		warning, extended *metav1.Time
		warned            bool
		warnAt, stopAt    time.Time
	}{
		"not warned yet":                      {nil, nil, false, t0.Add(25 * time.Minute), t0.Add(30 * time.Minute)},
		"warned on time":                      {at(25), nil, true, t0.Add(25 * time.Minute), t0.Add(30 * time.Minute)},
		"warned late":                         {at(40), nil, true, t0.Add(25 * time.Minute), t0.Add(45 * time.Minute)},
		"warned before activity":              {at(-10), nil, false, t0.Add(25 * time.Minute), t0.Add(30 * time.Minute)},
		"warned before its time (1 s)":        {&metav1.Time{Time: t0.Add(25*time.Minute - time.Second)}, nil, false, t0.Add(25 * time.Minute), t0.Add(30 * time.Minute)},
		"extended after the warning":          {at(25), at(60), false, t0.Add(55 * time.Minute), t0.Add(60 * time.Minute)},
		"extended, warned again":              {at(55), at(60), true, t0.Add(55 * time.Minute), t0.Add(60 * time.Minute)},
		"extended to before the window's end": {at(25), at(20), true, t0.Add(25 * time.Minute), t0.Add(30 * time.Minute)},
	} {
		t.Run(name, func(t *testing.T) {
			ws := &v1alpha1.Workstation{}
			ws.Status.Idle = &v1alpha1.IdleState{LastActivityTime: metav1.Time{Time: t0}, WarningTime: tc.warning, ExtendedUntil: tc.extended}
			s := (&scope{r: &Reconciler{}, ws: ws, st: &ws.Status}).idle()
			warnAt, stopAt, warned := s.idleTimes(30 * time.Minute)
			if !warnAt.Equal(tc.warnAt) || !stopAt.Equal(tc.stopAt) || warned != tc.warned {
				t.Errorf("idleTimes = %s, %s, warned %t; want %s, %s, %t", warnAt, stopAt, warned, tc.warnAt, tc.stopAt, tc.warned)
			}
		})
	}
}
