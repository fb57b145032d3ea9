package bench

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

// profileAPIServer writes a CPU profile of the API server to
// XDRIVE_BENCH_APISERVER_PROFILE, taken over the given seconds while a
// benchmark runs: where the server's time goes when it is the bottleneck.
// It returns at once; wait on the channel for the profile to be written.
func profileAPIServer(b *testing.B, cfg *rest.Config, seconds int) <-chan struct{} {
	done := make(chan struct{})
	path := os.Getenv("XDRIVE_BENCH_APISERVER_PROFILE")
	if path == "" {
		close(done)
		return done
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		b.Fatalf("API server profile: %v", err)
	}
	go func() {
		defer close(done)
		if err := fetchProfile(client, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimSuffix(cfg.Host, "/"), seconds), path); err != nil {
			b.Logf("API server profile: %v", err)
		}
	}()
	return done
}

func fetchProfile(client *http.Client, url, path string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s answered %s: %.200s", url, resp.Status, data)
	}
	return os.WriteFile(path, data, 0o644)
}

// dumpStored logs the named objects as the API server stores them
// (XDRIVE_BENCH_DUMP=ws-0007,d-0007), managed fields included: what each
// status write makes the server decode, patch, validate and encode.
func dumpStored(b *testing.B, cfg *rest.Config, namespace string) {
	names := os.Getenv("XDRIVE_BENCH_DUMP")
	if names == "" {
		return
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		b.Fatalf("dump: %v", err)
	}
	for _, name := range strings.Split(names, ",") {
		kind := "workstations"
		if strings.HasPrefix(name, "d-") {
			kind = "xdrives"
		}
		url := fmt.Sprintf("%s/apis/xdrive.io/v1alpha1/namespaces/%s/%s/%s", strings.TrimSuffix(cfg.Host, "/"), namespace, kind, name)
		resp, err := client.Get(url)
		if err != nil {
			b.Logf("dump %s: %v", name, err)
			continue
		}
		data, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		b.Logf("%s %s: %d bytes\n%s", kind, name, len(data), data)
	}
}
