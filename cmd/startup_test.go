package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// runAsManager makes the test binary run main() when a test execs it with
// this variable set, so that a test sees the manager's real start-up.
const runAsManager = "XDRIVE_TEST_RUN_MANAGER"

func TestMain(m *testing.M) {
	if os.Getenv(runAsManager) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestStartRefusesRegion: the manager exits before it reaches the cluster
// when the region is empty or unknown, and says what to set.
func TestStartRefusesRegion(t *testing.T) {
	for region, want := range map[string]string{
		"":           "error: no AWS region is set: set AWS_REGION",
		"us-east1":   `error: AWS region "us-east1" is not a known region`,
		"eu-west-1b": `its region is "eu-west-1"`,
	} {
		cmd := exec.Command(os.Args[0], "--cluster-name=test", "--metrics-bind-address=0", "--health-probe-bind-address=0")
		// Nothing of the machine's AWS setup or kubeconfig may leak in.
		cmd.Env = []string{runAsManager + "=1", "HOME=" + t.TempDir(), "AWS_REGION=" + region,
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
			"KUBECONFIG=/nonexistent"}
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("AWS_REGION=%q: the manager started; want it refused", region)
			continue
		}
		if !strings.Contains(string(out), want) {
			t.Errorf("AWS_REGION=%q: the manager said %q; want %q", region, out, want)
		}
	}
}

func TestParseCIDRs(t *testing.T) {
	got, err := parseCIDRs(" 198.51.100.7/32, 10.0.1.9/16 ,")
	if err != nil || strings.Join(got, " ") != "198.51.100.7/32 10.0.0.0/16" {
		t.Errorf("parseCIDRs = %v, %v", got, err)
	}
	if got, err := parseCIDRs(""); err != nil || len(got) != 0 {
		t.Errorf(`parseCIDRs("") = %v, %v; want none`, got, err)
	}
	for _, bad := range []string{"10.0.0.1", "2001:db8::/32", "x/8"} {
		if _, err := parseCIDRs(bad); err == nil {
			t.Errorf("parseCIDRs(%q) accepted it", bad)
		}
	}
}
