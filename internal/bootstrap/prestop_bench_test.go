package bootstrap

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// BenchmarkPreStopHookStart is the instance's part of "notice → hook
// started" (issue #30): from `xdrive-ctl release --kind spot-interruption`
// starting to the container's `docker exec` of its hook, over
// XDRIVE_BENCH_HOOKS sandboxed instances (100), released as many at a time
// as there are CPUs: each instance has its own. The operator's part, notice
// → release call for 100 Workstations at once, is BenchmarkInterruptionFlush's
// p99-notice-to-release-s (test/bench).
func BenchmarkPreStopHookStart(b *testing.B) {
	if testing.Short() {
		b.Skip("-short: no sandbox")
	}
	n := 100
	if v, err := strconv.Atoi(os.Getenv("XDRIVE_BENCH_HOOKS")); err == nil && v > 0 {
		n = v
	}
	p := testParams(b)
	p.Containers[0].PreStop = &v1alpha1.PreStopHook{Exec: []string{"checkpoint", "/work/ckpt"}}
	boxes := make([]*sandbox, n)
	forEach(n, func(i int) {
		boxes[i] = newSandbox(b, false)
		boxes[i].boot(p)
	})
	deadline := time.Now().Add(2 * time.Minute).UTC().Format(time.RFC3339)
	lat := make([]time.Duration, n)
	b.ResetTimer()
	forEach(n, func(i int) {
		s := boxes[i]
		began := time.Now()
		if _, stderr, err := s.ctl(nil, "release", "--kind", "spot-interruption", "--deadline", deadline); err != nil {
			b.Errorf("release %d: %v\n%s", i, err, stderr)
			return
		}
		for _, line := range strings.Split(s.read(filepath.Join(s.state, "exec-started")), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "web" && f[1] == "checkpoint" {
				at, err := strconv.ParseFloat(f[2], 64)
				if err == nil {
					lat[i] = time.Unix(0, int64(at*1e9)).Sub(began)
				}
			}
		}
		if lat[i] == 0 {
			b.Errorf("release %d started no hook", i)
		}
	})
	b.StopTimer()
	slices.Sort(lat)
	at := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	load, _ := os.ReadFile("/proc/loadavg")
	b.ReportMetric(at(0.5).Seconds(), "p50-hook-start-s")
	b.ReportMetric(at(0.99).Seconds(), "p99-hook-start-s")
	b.Logf("release → preStop hook started, %d instances, %d at a time: p50 %s, p99 %s, max %s (load average: %s)",
		n, runtime.NumCPU(), at(0.5), at(0.99), lat[n-1], strings.TrimSpace(string(load)))
}

// forEach runs f(0..n-1), as many at a time as there are CPUs.
func forEach(n int, f func(int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i)
		})
	}
	wg.Wait()
}
