package main

import (
	"flag"
	"testing"

	"github.com/xdrive-io/xdrive/internal/docgen"
)

// TestFlagsDoc: docs/flags.md is generated from the manager's flag set
// (make docs rewrites it), so it lists every flag with its real default.
func TestFlagsDoc(t *testing.T) {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	newFlags(fs)
	var extra []*flag.Flag
	// controller-runtime registers --kubeconfig on the command line itself.
	if f := flag.CommandLine.Lookup("kubeconfig"); f != nil {
		extra = append(extra, f)
	} else {
		t.Error("controller-runtime no longer registers --kubeconfig; update docs/flags.md's generator")
	}
	if err := docgen.Sync("../docs/flags.md", docgen.Flags(fs, extra...)); err != nil {
		t.Error(err)
	}
}
