package phases

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite docs/design.md's state diagrams from the tables")

const designDoc = "../../../docs/design.md"

// marker precedes each generated diagram in docs/design.md.
func marker(kind string) string {
	return "<!-- generated from internal/controller/phases (" + kind + "); `make diagrams` rewrites it -->"
}

// diagram finds the mermaid block after the kind's marker: the text before
// its body, the body, and the text after.
func diagram(t *testing.T, doc, kind string) (before, body, after string) {
	t.Helper()
	i := strings.Index(doc, marker(kind))
	if i < 0 {
		t.Fatalf("%s has no line %q before the %s diagram", designDoc, marker(kind), kind)
	}
	const open, fence = "```mermaid\n", "```"
	j := strings.Index(doc[i:], open)
	if j < 0 {
		t.Fatalf("no mermaid block after the %s marker", kind)
	}
	start := i + j + len(open)
	k := strings.Index(doc[start:], fence)
	if k < 0 {
		t.Fatalf("the %s diagram is not closed", kind)
	}
	return doc[:start], doc[start : start+k], doc[start+k:]
}

// TestDesignDiagrams: docs/design.md's state diagrams are the tables.
// `go test ./internal/controller/phases/ -run TestDesignDiagrams -update` rewrites them.
func TestDesignDiagrams(t *testing.T) {
	raw, err := os.ReadFile(designDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for kind, want := range map[string]string{"Workstation": Workstation.Mermaid(), "XDrive": XDrive.Mermaid()} {
		before, got, after := diagram(t, doc, kind)
		if got == want {
			continue
		}
		if *update {
			doc = before + want + after
			continue
		}
		t.Errorf("%s's %s diagram differs from phases.%s; run `make diagrams`.\n--- doc\n%s--- table\n%s", filepath.Base(designDoc), kind, kind, got, want)
	}
	if *update {
		if err := os.WriteFile(designDoc, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEveryPhaseInTable: every phase of the API is in its kind's table, so
// none can be entered or left without a row.
func TestEveryPhaseInTable(t *testing.T) {
	ws := []v1alpha1.WorkstationPhase{wsPending, wsLaunching, wsRunning, wsReleasing, wsTerminating, wsStopped}
	for _, p := range ws {
		if !contains(Workstation.Phases(), p) {
			t.Errorf("Workstation phase %s is in no row of the table", p)
		}
	}
	xd := []v1alpha1.XDrivePhase{xdPending, xdArchived, xdRestoring, xdAttached, xdDetaching, xdSnapshotting, xdDeletingVolume, xdKept, xdDeleting}
	for _, p := range xd {
		if !contains(XDrive.Phases(), p) {
			t.Errorf("XDrive phase %s is in no row of the table", p)
		}
	}
}

func contains[P comparable](list []P, p P) bool {
	for _, q := range list {
		if q == p {
			return true
		}
	}
	return false
}

// TestAllows: a row allows its change, staying is allowed, the rest is not.
func TestAllows(t *testing.T) {
	cases := []struct {
		from, to v1alpha1.XDrivePhase
		want     bool
	}{
		{"", xdPending, true},
		{xdArchived, xdArchived, true},
		{xdSnapshotting, xdDeletingVolume, true},
		{xdAttached, xdDeletingVolume, false}, // never delete a volume without its snapshot
		{xdArchived, xdAttached, false},
	}
	for _, c := range cases {
		if got := XDrive.Allows(c.from, c.to); got != c.want {
			t.Errorf("XDrive.Allows(%q, %q) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}
