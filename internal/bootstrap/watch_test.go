package bootstrap

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const metadataMockHint = "install it with: go install github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock@v1.13.0"

// metadataMock finds ec2-metadata-mock on PATH, in GOBIN or in GOPATH/bin.
func metadataMock(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("ec2-metadata-mock"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for i, dir := range lines {
			if i > 0 {
				dir = filepath.Join(dir, "bin")
			}
			p := filepath.Join(dir, "ec2-metadata-mock")
			if dir != "" && dir != "bin" {
				if _, err := os.Stat(p); err == nil {
					return p
				}
			}
		}
	}
	return needTool(t, "ec2-metadata-mock", metadataMockHint)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// imdsGet fetches path from IMDS with a fresh IMDSv2 token and returns the status code.
func imdsGet(base, path string) (int, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	req, _ := http.NewRequest(http.MethodPut, base+"/latest/api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	var token bytes.Buffer
	_, _ = token.ReadFrom(resp.Body)
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set("X-aws-ec2-metadata-token", token.String())
	resp, err = client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process is a started command; done is closed once it has ended with err.
type process struct {
	out  *lockedBuffer
	done chan struct{}
	err  error
}

// startProcess starts cmd in its own process group with its output
// collected; cleanup kills the group.
func startProcess(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

func TestWatcherReleasesOnSpotNotice(t *testing.T) {
	mock := metadataMock(t)
	s := newSandbox(t, false)
	s.boot(testParams(t))

	port := freePort(t)
	base := "http://127.0.0.1:" + port
	home := t.TempDir()
	mockCmd := exec.Command(mock, "-n", "127.0.0.1", "-p", port, "-I", "-d", "4", "--rebalance-delay-sec", "1")
	mockCmd.Dir, mockCmd.Env = home, append(os.Environ(), "HOME="+home)
	mockLog := startProcess(t, mockCmd).out
	waitFor(t, 15*time.Second, "ec2-metadata-mock to answer", func() bool {
		code, err := imdsGet(base, "/latest/meta-data/instance-id")
		return err == nil && code == http.StatusOK
	})

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	watcher := s.command(ctx, []string{"XDRIVE_IMDS_URL=" + base, "XDRIVE_WATCH_INTERVAL=1"},
		filepath.Join(s.root, "usr/local/sbin/xdrive-watch"))
	watch := startProcess(t, watcher)
	watchLog := watch.out

	// Until the mock shows the notice, the drive must stay mounted.
	marker := filepath.Join(s.root, "var/lib/xdrive/released")
	notice404 := 0
	waitFor(t, 30*time.Second, "the spot notice", func() bool {
		released := s.exists(marker)
		code, err := imdsGet(base, "/latest/meta-data/spot/instance-action")
		if err != nil {
			t.Fatalf("IMDS: %v\n%s", err, mockLog.String())
		}
		if code == http.StatusNotFound {
			notice404++
			if released {
				t.Fatalf("released before the notice; watcher log:\n%s", watchLog.String())
			}
		}
		return code == http.StatusOK
	})
	if notice404 == 0 {
		t.Fatal("never saw the mock without a notice; the test proves nothing")
	}

	select {
	case <-watch.done:
		if watch.err != nil {
			t.Fatalf("watcher: %v\n%s", watch.err, watchLog.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("watcher did not release and stop within 30s; log:\n%s", watchLog.String())
	}
	log := watchLog.String()
	if !strings.Contains(log, "spot interruption notice") || !strings.Contains(log, "drive released") {
		t.Errorf("watcher log:\n%s", log)
	}
	expectOrder(t, s.calls(), "docker stop -t 20 web", "systemctl stop docker.service docker.socket", "umount ROOT/v1")
	expectNone(t, s.calls(), "docker commit") // no commit on the notice path
	st := s.status()
	if !st.Released || st.Mounted || !st.Rebalance || !st.SpotNotice {
		t.Errorf("status = %+v; watcher log:\n%s", st, log)
	}
	if action := s.read(filepath.Join(s.root, "var/lib/xdrive/spot-instance-action")); !strings.Contains(action, `"terminate"`) {
		t.Errorf("recorded notice = %q", action)
	}
	// The operator's own release, arriving after, learns of the notice.
	if stdout, stderr, err := s.ctl(nil, "release"); err != nil || strings.TrimSpace(stdout) != SpotNoticeWord {
		t.Errorf("release after the watcher's = %q, %v\n%s", stdout, err, stderr)
	}
}

func TestWatcherStopsWhenReleased(t *testing.T) {
	s := newSandbox(t, false)
	s.boot(testParams(t))
	if stdout, stderr, err := s.ctl(nil, "release"); err != nil || stdout != "" {
		t.Fatalf("release without a notice = %q, %v\n%s", stdout, err, stderr)
	}
	// Port 9 on loopback: nothing answers, and nothing leaves the machine.
	_, stderr, err := s.run([]string{"XDRIVE_IMDS_URL=http://127.0.0.1:9"}, filepath.Join(s.root, "usr/local/sbin/xdrive-watch"))
	if err != nil || !strings.Contains(stderr, "watcher stops") {
		t.Fatalf("err = %v, stderr:\n%s", err, stderr)
	}
}
