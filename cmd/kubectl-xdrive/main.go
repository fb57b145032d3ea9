// Command kubectl-xdrive is the kubectl plugin `kubectl xdrive`: ssh,
// port-forward and an ssh alias with the host key the operator pins; start,
// stop, status, list, logs and open of Workstations. Install it on PATH
// (go install ./cmd/kubectl-xdrive, or krew) and run `kubectl xdrive --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/xdrive-io/xdrive/internal/plugin"
)

// version is set at build time (make build, make krew).
var version = "dev"

func main() {
	// A hang-up or kill ends ssh and the command, whose deferred clean-up
	// then removes the session's files (with --operator-key, a root key).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err := plugin.NewCommand(&plugin.Options{Version: version}).ExecuteContext(ctx)
	stop()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() > 0 {
		os.Exit(exit.ExitCode()) // ssh's own status; it said why on stderr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubectl xdrive:", err)
		os.Exit(1)
	}
}
