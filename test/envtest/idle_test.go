package testenv

import (
	"fmt"
	"testing"
)

var invalidIdleCases = []invalidCase{
	{name: "after 4m", kind: kindWS, spec: `{` + ws + `, idleStop: {after: 4m}}`, want: []string{"spec.idleStop.after", "after: must be between 5m and 720h"}},
	{name: "after 721h", kind: kindWS, spec: `{` + ws + `, idleStop: {after: 721h}}`, want: []string{"spec.idleStop.after", "after: must be between 5m and 720h"}},
	{name: "after not a duration", kind: kindWS, spec: `{` + ws + `, idleStop: {after: soon}}`, want: []string{"spec.idleStop.after"}},
	{name: "cpuLoad negative", kind: kindWS, spec: `{` + ws + `, idleStop: {after: 30m, cpuLoad: "-1"}}`, want: []string{"spec.idleStop.cpuLoad", "should match"}},
	{name: "gpu 0", kind: kindWS, spec: `{` + ws + `, idleStop: {after: 30m, gpuUtilizationPercent: 0}}`, want: []string{"spec.idleStop.gpuUtilizationPercent", "greater than or equal to 1"}},
	{name: "gpu 101", kind: kindWS, spec: `{` + ws + `, idleStop: {after: 30m, gpuUtilizationPercent: 101}}`, want: []string{"spec.idleStop.gpuUtilizationPercent", "less than or equal to 100"}},
	{name: "port 0", kind: kindWS, spec: `{` + ws + `, idleStop: {after: 30m, networkPorts: [0]}}`, want: []string{"spec.idleStop.networkPorts[0]", "greater than or equal to 1"}},
	{name: "checkCommand empty", kind: kindWS, spec: `{` + ws + `, idleStop: {after: 30m, checkCommand: ""}}`, want: []string{"spec.idleStop.checkCommand"}},
	{name: "class default above max", kind: kindWSC, spec: `{` + wsc + `, idleStop: {defaultAfter: 2h, maxAfter: 1h}}`, want: []string{"spec.idleStop", "defaultAfter: must not exceed maxAfter"}},
	{name: "class max 1m", kind: kindWSC, spec: `{` + wsc + `, idleStop: {maxAfter: 1m}}`, want: []string{"spec.idleStop.maxAfter", "maxAfter: must be between 5m and 720h"}},
	{name: "class maxExtend 721h", kind: kindWSC, spec: `{` + wsc + `, idleStop: {maxExtend: 721h}}`, want: []string{"spec.idleStop.maxExtend", "maxExtend: must be between 0s and 720h"}},
	{name: "class maxExtend negative", kind: kindWSC, spec: `{` + wsc + `, idleStop: {maxExtend: -1h}}`, want: []string{"spec.idleStop.maxExtend", "maxExtend: must be between 0s and 720h"}},
}

// TestIdleStopValidation: the API server rejects idle windows under 5 minutes
// and bad thresholds, and accepts a full idleStop and class bounds.
func TestIdleStopValidation(t *testing.T) {
	e := sharedEnv(t)
	ns := CreateNamespace(t, e.Client)
	for i, tc := range invalidIdleCases {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			obj := newObject(t, tc.kind, ns, fmt.Sprintf("invalid-idle-%d-%s", i, ns), tc.spec)
			err := e.Client.Create(testCtx(t), obj)
			if err == nil {
				_ = e.Client.Delete(testCtx(t), obj)
			}
			assertInvalid(t, err, tc.want)
		})
	}
	full := newObject(t, kindWS, ns, "idle-full", `{`+ws+`, idleStop: {after: 1h30m, cpuLoad: "1.5", gpuUtilizationPercent: 20,
		networkPorts: [8888, 22], networkBytesPerSecond: 10000, checkCommand: "pgrep -f train.py"}}`)
	if err := e.Client.Create(testCtx(t), full); err != nil {
		t.Fatalf("a full idleStop was rejected: %v", err)
	}
	for name, bounds := range map[string]string{"idle-": "defaultAfter: 30m, maxAfter: 4h, maxExtend: 2h", "idle-no-extend-": "maxExtend: 0s"} {
		cls := newObject(t, kindWSC, "", name+ns, `{`+wsc+`, idleStop: {`+bounds+`}}`)
		if err := e.Client.Create(testCtx(t), cls); err != nil {
			t.Fatalf("a class with idle bounds {%s} was rejected: %v", bounds, err)
		}
		t.Cleanup(func() { _ = e.Client.Delete(testCtx(t), cls) })
	}
}
