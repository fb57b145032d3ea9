package install_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// dockerfileInfo is what the tests read from the Dockerfile, which cannot be
// built here (no Docker engine, no registry).
type dockerfileInfo struct {
	finalBase  string
	user       string
	entrypoint []string
	copied     []string // source directories the build stage copies
	text       string
}

func dockerfile(t *testing.T) dockerfileInfo {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	d := dockerfileInfo{text: string(b)}
	for _, line := range strings.Split(d.text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "FROM":
			d.finalBase = f[1]
		case "USER":
			d.user = f[1]
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "ENTRYPOINT")), &d.entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT is not in exec form: %v", err)
			}
		case "COPY":
			if !strings.HasPrefix(f[1], "--") {
				d.copied = append(d.copied, f[1:len(f)-1]...)
			}
		}
	}
	return d
}

// TestDockerfile checks what the Dockerfile promises: a static build, a
// distroless non-root base, the manager as entrypoint, the version flags, and
// every package of the manager copied into the build stage.
func TestDockerfile(t *testing.T) {
	d := dockerfile(t)
	if d.finalBase != "gcr.io/distroless/static:nonroot" {
		t.Errorf("final stage FROM %s, want gcr.io/distroless/static:nonroot", d.finalBase)
	}
	if d.user != "65532:65532" {
		t.Errorf("USER %s, want 65532:65532", d.user)
	}
	if !slices.Equal(d.entrypoint, []string{"/manager"}) {
		t.Errorf("ENTRYPOINT %q, want [/manager]", d.entrypoint)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}", "-X main.buildDate=${BUILD_DATE}"} {
		if !strings.Contains(d.text, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	out := run(t, exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "./cmd"))
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(repoRoot(), dir)
		if err != nil {
			t.Fatal(err)
		}
		top := strings.SplitN(filepath.ToSlash(rel), "/", 2)[0] + "/"
		if !slices.Contains(d.copied, top) {
			t.Errorf("the manager needs %s, but the Dockerfile copies only %v", rel, d.copied)
		}
	}
	ignore, err := os.ReadFile(filepath.Join(repoRoot(), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range d.copied {
		if !strings.Contains(string(ignore), "!"+dir) {
			t.Errorf(".dockerignore does not let %s into the build context", dir)
		}
	}
}
