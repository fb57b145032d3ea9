// Package deps checks what links what: a binary or package that has no use
// for the AWS SDK or the controllers must not link them by way of a shared
// constant (issue #27).
package deps

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/xdrive-io/xdrive/"

// TestDependencies runs `go list -deps` on each package and fails if it links
// an AWS SDK module, or a package of this module that is not in its list.
func TestDependencies(t *testing.T) {
	cases := []struct {
		pkg string
		// own are the packages of this module it may link.
		own []string
	}{
		// kubectl xdrive reads Workstations and their Secret, and runs ssh;
		// it reads status.cost with internal/cost, which links only the API.
		{"cmd/kubectl-xdrive", []string{"cmd/kubectl-xdrive", "internal/plugin", "api/v1alpha1", "internal/cost"}},
		// The user-data: the instance side needs no EC2 client.
		{"internal/bootstrap", []string{"internal/bootstrap", "api/v1alpha1"}},
	}
	for _, c := range cases {
		t.Run(c.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", module+c.pkg).Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", c.pkg, err)
			}
			deps := strings.Fields(string(out))
			var aws, own []string
			for _, d := range deps {
				switch {
				case strings.HasPrefix(d, "github.com/aws/"):
					aws = append(aws, d)
				case strings.HasPrefix(d, module) && !slices.Contains(c.own, strings.TrimPrefix(d, module)):
					own = append(own, strings.TrimPrefix(d, module))
				}
			}
			if len(aws) > 0 {
				t.Errorf("%s links %d packages of the AWS SDK, e.g. %s; it may link none", c.pkg, len(aws), aws[0])
			}
			if len(own) > 0 {
				t.Errorf("%s links %v of this module; it may link only %v", c.pkg, own, c.own)
			}
			t.Logf("%s links %d packages", c.pkg, len(deps))
		})
	}
}
