package controllers_test

import (
	"os"
	"testing"
)

// knownBug skips a test that fails only because of a reported controller
// bug, unless XDRIVE_KNOWN_BUGS=1. Remove the call once the fix is applied.
func knownBug(t *testing.T, id, what string) {
	t.Helper()
	if os.Getenv("XDRIVE_KNOWN_BUGS") == "" {
		t.Skipf("known controller bug %s: %s (XDRIVE_KNOWN_BUGS=1 runs it)", id, what)
	}
}
