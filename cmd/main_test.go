package main

import (
	"flag"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFlagsDocumented: the table of manager flags in docs/aws.md lists every
// flag, and no other, with the default the flag really has.
func TestFlagsDocumented(t *testing.T) {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	newFlags(fs)
	raw, err := os.ReadFile("../docs/aws.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "## 4. Manager flags\n")
	if !ok {
		t.Fatal("docs/aws.md has no section \"4. Manager flags\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	names := regexp.MustCompile("`--([a-z0-9-]+)`")
	firstCode := regexp.MustCompile("^\\s*`([^`]*)`")
	documented := map[string]bool{}
	for _, row := range strings.Split(section, "\n") {
		cells := strings.Split(row, "|")
		if len(cells) < 4 || !strings.Contains(cells[1], "`--") {
			continue
		}
		def := firstCode.FindStringSubmatch(cells[2]) // nil: a default in words
		for _, m := range names.FindAllStringSubmatch(cells[1], -1) {
			name := m[1]
			documented[name] = true
			f := fs.Lookup(name)
			if f == nil {
				f = flag.CommandLine.Lookup(name) // --kubeconfig, from controller-runtime
			}
			switch {
			case f == nil:
				t.Errorf("docs/aws.md documents --%s, which the manager does not have", name)
			case def != nil && !sameDefault(f.DefValue, def[1]):
				t.Errorf("docs/aws.md gives --%s the default %s; it is %q", name, def[1], f.DefValue)
			}
		}
	}
	var missing []string
	fs.VisitAll(func(f *flag.Flag) {
		if !documented[f.Name] {
			missing = append(missing, "--"+f.Name)
		}
	})
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Errorf("docs/aws.md does not document %v", missing)
	}
}

// sameDefault compares a flag's default with the one documented: "" stands
// for the empty string, and durations compare by value (5m is 5m0s).
func sameDefault(actual, doc string) bool {
	if doc == `""` {
		doc = ""
	}
	if actual == doc {
		return true
	}
	a, errA := time.ParseDuration(actual)
	d, errD := time.ParseDuration(doc)
	return errA == nil && errD == nil && a == d
}
