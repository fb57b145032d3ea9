package bench

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/xdrive-io/xdrive/test/bench/managerchild"
	"github.com/xdrive-io/xdrive/test/harness"
)

// managerChild is the benchmark's end of a manager process
// (test/bench/managerchild), whose memory is measured apart from the
// benchmark's clients, the harness and envtest.
type managerChild struct {
	in  io.WriteCloser
	out *bufio.Scanner
	// stop ends the process and waits for it (once; the benchmark's end calls it too).
	stop func()
}

// startManagerChild builds the manager process as the image builds the
// manager (-trimpath, -s -w) and runs it for h's namespace and cluster, on
// the fake EC2, until the benchmark ends.
func startManagerChild(b *testing.B, h *harness.Harness, pollInterval, idleRequeue time.Duration) *managerChild {
	dir := b.TempDir()
	bin := filepath.Join(dir, "managerchild")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "github.com/xdrive-io/xdrive/test/bench/managerchild/cmd")
	build.Stderr = os.Stderr
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // static, as the image's (Dockerfile)
	if err := build.Run(); err != nil {
		b.Fatalf("build the manager process: %v", err)
	}
	cfg := harness.Env(b).Config
	spec, err := json.Marshal(managerchild.Spec{Host: cfg.Host, CAData: cfg.CAData, CertData: cfg.CertData, KeyData: cfg.KeyData,
		Namespace: h.Namespace, Cluster: h.Cluster, PollInterval: pollInterval, IdleRequeue: idleRequeue,
		HeapProfile: os.Getenv("XDRIVE_BENCH_HEAP_PROFILE"), CPUProfile: os.Getenv("XDRIVE_BENCH_CPU_PROFILE")})
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "manager.json")
	if err := os.WriteFile(path, spec, 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, path)
	// GOGC as the Deployment sets it (config/manager/manager.yaml, the chart).
	cmd.Env = append(os.Environ(), "GOGC=50")
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
	c := &managerChild{in: in, out: bufio.NewScanner(out)}
	c.stop = sync.OnceFunc(func() {
		_ = in.Close()
		if err := cmd.Wait(); err != nil {
			b.Errorf("manager process: %v", err)
		}
	})
	b.Cleanup(c.stop)
	return c
}

func (c *managerChild) resetCalls(b *testing.B) {
	if _, err := io.WriteString(c.in, "reset\n"); err != nil {
		b.Fatal(err)
	}
}

func (c *managerChild) report(b *testing.B) managerchild.Report {
	if _, err := io.WriteString(c.in, "report\n"); err != nil {
		b.Fatal(err)
	}
	var r managerchild.Report
	if !c.out.Scan() {
		b.Fatalf("manager process ended: %v", c.out.Err())
	}
	if err := json.Unmarshal(c.out.Bytes(), &r); err != nil {
		b.Fatal(err)
	}
	return r
}
