package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/xdrive-io/xdrive/internal/controller/workstation"
	"github.com/xdrive-io/xdrive/internal/operator"
	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/fakeec2"
	"github.com/xdrive-io/xdrive/test/harness"
)

// managerChildEnv names the file of a childSpec: set, the bench binary runs
// only the manager, on the in-process fake EC2, so that the manager's memory
// is measured apart from the benchmark's clients, the harness and moto.
const managerChildEnv = "XDRIVE_BENCH_MANAGER_CHILD"

type childSpec struct {
	Host                      string
	CAData, CertData, KeyData []byte
	Namespace, Cluster        string
	PollInterval, IdleRequeue time.Duration
	// HeapProfile, if set, is where each report writes a heap profile.
	HeapProfile string
}

// childReport is what the manager process says of itself.
type childReport struct {
	Calls      map[string]int
	RSSKiB     int64
	PeakRSSKiB int64
	// RSSAnonKiB is the RSS less the mapped files (the binary's pages).
	RSSAnonKiB   int64
	HeapInuseMiB float64
}

// runManagerChild runs the manager until its standard input ends. It answers
// "reset" by zeroing the EC2 call counts and "report" with a childReport line.
func runManagerChild(specPath string) int {
	ctrl.SetLogger(logr.Discard())
	data, err := os.ReadFile(specPath)
	var spec childSpec
	if err == nil {
		err = json.Unmarshal(data, &spec)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "manager child:", err)
		return 2
	}
	cfg := &rest.Config{Host: spec.Host, QPS: 500, Burst: 1000,
		TLSClientConfig: rest.TLSClientConfig{CAData: spec.CAData, CertData: spec.CertData, KeyData: spec.KeyData}}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  testenv.NewScheme(),
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
		Agent: harness.NewFakeAgent(), Timings: workstation.Timings{IdleRequeue: spec.IdleRequeue, StopTimeout: 3 * time.Second, FlushTimeout: 2 * time.Second}}
	if err := operator.Setup(ctx, mgr, operator.AWS{EC2: fake, SSM: fake}, opts); err != nil {
		fmt.Fprintln(os.Stderr, "manager child:", err)
		return 2
	}
	go settle(ctx, fake)
	stopped := make(chan error, 1)
	go func() { stopped <- mgr.Start(ctx) }()
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		switch in.Text() {
		case "reset":
			fake.ResetCalls()
		case "report":
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			writeHeapProfile(spec.HeapProfile)
			_ = out.Encode(childReport{Calls: fake.Calls(), RSSKiB: procStatusKiB("VmRSS"), PeakRSSKiB: procStatusKiB("VmHWM"), RSSAnonKiB: procStatusKiB("RssAnon"),
				HeapInuseMiB: float64(ms.HeapInuse) / (1 << 20)})
		}
	}
	cancel()
	if err := <-stopped; err != nil {
		fmt.Fprintln(os.Stderr, "manager child:", err)
		return 1
	}
	return 0
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

// settle moves the fake's instances, volumes and snapshots on every 50 ms.
func settle(ctx context.Context, fake *fakeec2.Fake) {
	for ctx.Err() == nil {
		fake.Settle()
		time.Sleep(50 * time.Millisecond)
	}
}

// managerChild is the parent's end of a manager process.
type managerChild struct {
	in  io.WriteCloser
	out *bufio.Scanner
}

// startManagerChild runs the operator for h's namespace and cluster in a
// process of its own, on the fake EC2, until the benchmark ends.
func startManagerChild(b *testing.B, h *harness.Harness, pollInterval, idleRequeue time.Duration) *managerChild {
	cfg := harness.Env(b).Config
	spec, err := json.Marshal(childSpec{Host: cfg.Host, CAData: cfg.CAData, CertData: cfg.CertData, KeyData: cfg.KeyData,
		Namespace: h.Namespace, Cluster: h.Cluster, PollInterval: pollInterval, IdleRequeue: idleRequeue,
		HeapProfile: os.Getenv("XDRIVE_BENCH_HEAP_PROFILE")})
	if err != nil {
		b.Fatal(err)
	}
	path := b.TempDir() + "/manager.json"
	if err := os.WriteFile(path, spec, 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	// GOGC as the Deployment sets it (config/manager/manager.yaml, the chart).
	cmd.Env = append(os.Environ(), managerChildEnv+"="+path, "GOGC=50")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = in.Close()
		if err := cmd.Wait(); err != nil {
			b.Errorf("manager process: %v", err)
		}
	})
	return &managerChild{in: in, out: bufio.NewScanner(out)}
}

func (c *managerChild) resetCalls(b *testing.B) {
	if _, err := io.WriteString(c.in, "reset\n"); err != nil {
		b.Fatal(err)
	}
}

func (c *managerChild) report(b *testing.B) childReport {
	if _, err := io.WriteString(c.in, "report\n"); err != nil {
		b.Fatal(err)
	}
	var r childReport
	if !c.out.Scan() {
		b.Fatalf("manager process ended: %v", c.out.Err())
	}
	if err := json.Unmarshal(c.out.Bytes(), &r); err != nil {
		b.Fatal(err)
	}
	return r
}

// procStatusKiB reads a kB field of /proc/self/status, e.g. VmRSS or VmHWM.
func procStatusKiB(field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			var v int64
			_, _ = fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}
