// Package moto starts moto_server on 127.0.0.1 for wire-level tests and hands
// out isolated AWS clients (one moto account per test).
package moto

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Region is the region every test client uses.
const Region = "us-east-1"

// Server is a running moto_server.
type Server struct {
	URL string
	cmd *exec.Cmd
}

var portLine = regexp.MustCompile(`Running on (http://127\.0\.0\.1:\d+)`)

// Start runs moto_server on a random loopback port and waits until it answers.
func Start() (*Server, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("moto_server is not on PATH: %w", err)
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", "0")
	cmd.Env = append(os.Environ(),
		"MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION=true",
		"MOTO_ENABLE_AMI_VALIDATION=true",
		"MOTO_ALLOW_NONEXISTENT_REGION=false",
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting moto_server: %w", err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if m := portLine.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
	}()
	s := &Server{cmd: cmd}
	select {
	case s.URL = <-found:
	case <-time.After(60 * time.Second):
		s.Stop()
		return nil, fmt.Errorf("moto_server did not report its port within 60s")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("moto_server at %s did not answer: %w", s.URL, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop ends the server and its children.
func (s *Server) Stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
)

// Main runs a test package with one shared moto_server. When moto_server is
// missing the package's moto tests are skipped, unless CI=true, where they fail.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run runs the tests, stops the shared server and returns the exit code.
func Run(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// Shared returns the package's moto_server, starting it on first use. With
// -short (make test-unit) it skips t.
func Shared(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no moto")
	}
	sharedOnce.Do(func() { shared, sharedErr = Start() })
	if sharedErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("moto is required in CI: %v", sharedErr)
		}
		t.Skipf("skipping: %v", sharedErr)
	}
	return shared
}

// NewAccount returns a fresh 12-digit moto account ID, so tests never share state.
func NewAccount() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(899_999_999_999))
	return fmt.Sprintf("%012d", n.Int64()+100_000_000_000)
}

// Config returns an AWS config that talks to endpoint (moto or a proxy in
// front of it) as the given moto account.
func Config(endpoint, account string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(endpoint),
		HTTPClient:   &http.Client{Transport: AccountTransport(account, nil), Timeout: 60 * time.Second},
	}
}

// AccountTransport adds moto's account header to every request.
func AccountTransport(account string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("x-moto-account-id", account)
		return next.RoundTrip(r)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Reset clears all of moto's state.
func (s *Server) Reset(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/moto-api/reset", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
