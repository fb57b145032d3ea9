// Package managerchild runs the xdrive manager on the in-process fake EC2 and
// the fake agent, in a process of its own (./cmd), for the benchmarks that
// measure the manager's memory: the process carries what the manager binary
// carries, and the fake EC2, but none of the benchmark's clients, the
// harness or envtest.
package managerchild

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/controller/workstation"
	"github.com/xdrive-io/xdrive/internal/operator"
	"github.com/xdrive-io/xdrive/test/fakeagent"
	"github.com/xdrive-io/xdrive/test/fakeec2"
)

// Spec is what the benchmark tells the manager process.
type Spec struct {
	Host                      string
	CAData, CertData, KeyData []byte
	Namespace, Cluster        string
	PollInterval, IdleRequeue time.Duration
	// HeapProfile, if set, is where each report writes a heap profile.
	HeapProfile string
	// CPUProfile, if set, is where the CPU profile from the start to the
	// first report is written.
	CPUProfile string
}

// Report is what the manager process says of itself.
type Report struct {
	Calls      map[string]int
	RSSKiB     int64
	PeakRSSKiB int64
	// RSSAnonKiB is the RSS less the mapped files (the binary's pages).
	RSSAnonKiB   int64
	HeapInuseMiB float64
	// API is what the manager asked of the API server since the start (or the last reset).
	API Writes
	// CPUSeconds is the CPU time the process used since its start, user and system.
	CPUSeconds float64
}

// Run reads a Spec (JSON) from specPath and runs the manager until standard
// input ends. It answers "reset" by zeroing the EC2 call counts and "report"
// with a Report line on standard output. It returns the exit code.
func Run(specPath string) int {
	ctrl.SetLogger(logr.Discard())
	data, err := os.ReadFile(specPath)
	var spec Spec
	if err == nil {
		err = json.Unmarshal(data, &spec)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "manager child:", err)
		return 2
	}
	scheme := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		fmt.Fprintln(os.Stderr, "manager child:", err)
		return 2
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		fmt.Fprintln(os.Stderr, "manager child:", err)
		return 2
	}
	if spec.HeapProfile != "" {
		runtime.MemProfileRate = 16 << 10 // finer than the default 512 KiB: the heap is tens of MiB
	}
	cfg := &rest.Config{Host: spec.Host, QPS: 500, Burst: 1000,
		TLSClientConfig: rest.TLSClientConfig{CAData: spec.CAData, CertData: spec.CertData, KeyData: spec.KeyData}}
	api := &requests{trace: strings.Split(os.Getenv("XDRIVE_BENCH_TRACE"), ",")}
	api.reset()
	cfg.Wrap(api.wrap)
	stopCPU := startCPUProfile(spec.CPUProfile)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   operator.CacheOptions(spec.Namespace),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "manager child:", err)
		return 2
	}
	fake := fakeec2.New(fakeec2.Options{Cluster: spec.Cluster, Now: time.Now})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := operator.Options{Cluster: spec.Cluster, PollInterval: spec.PollInterval, UserData: operator.UserData,
		Agent: fakeagent.NewFakeAgent(), Timings: workstation.Timings{IdleRequeue: spec.IdleRequeue, StopTimeout: 3 * time.Second, FlushTimeout: 2 * time.Second}}
	if err := operator.Setup(ctx, mgr, operator.AWS{EC2: fake, SSM: fake}, opts); err != nil {
		fmt.Fprintln(os.Stderr, "manager child:", err)
		return 2
	}
	go fake.SettleEvery(ctx, 50*time.Millisecond)
	stopped := make(chan error, 1)
	go func() { stopped <- mgr.Start(ctx) }()
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		switch in.Text() {
		case "reset":
			fake.ResetCalls()
			api.reset()
		case "report":
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			writeHeapProfile(spec.HeapProfile)
			stopCPU()
			_ = out.Encode(Report{Calls: fake.Calls(), RSSKiB: procStatusKiB("VmRSS"), PeakRSSKiB: procStatusKiB("VmHWM"),
				RSSAnonKiB: procStatusKiB("RssAnon"), HeapInuseMiB: float64(ms.HeapInuse) / (1 << 20), API: api.report(), CPUSeconds: cpuSeconds()})
		}
	}
	cancel()
	if err := <-stopped; err != nil {
		fmt.Fprintln(os.Stderr, "manager child:", err)
		return 1
	}
	return 0
}

// startCPUProfile profiles the process into path, until the returned
// function is first called; no path, no profile.
func startCPUProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "manager child:", err)
		return func() {}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		})
	}
}

func writeHeapProfile(path string) {
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "manager child:", err)
		return
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "manager child:", err)
	}
}

// cpuSeconds is the process's CPU time so far, user and system.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// procStatusKiB reads a kB field of /proc/self/status, e.g. VmRSS or VmHWM.
func procStatusKiB(field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
