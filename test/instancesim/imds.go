package instancesim

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// imds is a loopback stand-in for the EC2 instance metadata service (IMDSv2),
// one per simulator: each instance reads it under /<instance-id>/, which is
// what XDRIVE_IMDS_URL points its xdrive-watch at. It serves only what the
// watcher reads: a token, and the spot instance-action once a notice is set.
type imds struct {
	srv *http.Server
	URL string

	mu      sync.Mutex
	notices map[string]time.Time // instance ID -> termination time
}

const imdsToken = "instancesim-imds-token"

func startIMDS() (*imds, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	m := &imds{URL: "http://" + ln.Addr().String(), notices: map[string]time.Time{}}
	m.srv = &http.Server{Handler: m, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = m.srv.Serve(ln) }()
	return m, nil
}

// Notice makes spot/instance-action show a terminate action for the instance, two minutes out.
func (m *imds) Notice(instanceID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.notices[instanceID] = time.Now().Add(2 * time.Minute).UTC()
}

func (m *imds) Close() { _ = m.srv.Close() }

func (m *imds) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, path, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	path = "/" + path
	if path == "/latest/api/token" {
		if r.Method != http.MethodPut {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		_, _ = w.Write([]byte(imdsToken))
		return
	}
	if r.Header.Get("X-aws-ec2-metadata-token") != imdsToken {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if path == "/latest/meta-data/spot/instance-action" {
		m.mu.Lock()
		at, found := m.notices[id]
		m.mu.Unlock()
		if found {
			_ = json.NewEncoder(w).Encode(map[string]string{"action": "terminate", "time": at.Format("2006-01-02T15:04:05Z")})
			return
		}
	}
	http.NotFound(w, r)
}
