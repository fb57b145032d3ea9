package sim_test

import (
	"errors"
	"flag"
	"os"
	"strconv"
	"testing"

	"github.com/xdrive-io/xdrive/test/sim"
)

var (
	seedFlag = flag.Uint64("seed", 0, "replay one seed (TestSeed)")
	stepFlag = flag.Int("steps", 150, "random steps per seed")
)

// seeds is how many seeds TestSeeds plays: XDRIVE_SIM_SEEDS, or 2000.
func seeds() int {
	if n, err := strconv.Atoi(os.Getenv("XDRIVE_SIM_SEEDS")); err == nil && n > 0 {
		return n
	}
	return 2000
}

// TestSeeds plays many seeds; any broken invariant fails with a replayable trace.
func TestSeeds(t *testing.T) {
	n := seeds()
	first := uint64(1)
	if s, err := strconv.ParseUint(os.Getenv("XDRIVE_SIM_FIRST_SEED"), 10, 64); err == nil {
		first = s
	}
	failures := 0
	for seed := first; seed < first+uint64(n); seed++ {
		if err := sim.Run(seed, *stepFlag); err != nil {
			var f *sim.Failure
			if errors.As(err, &f) {
				t.Error(f.Error())
			} else {
				t.Error(err)
			}
			if failures++; failures >= 3 {
				t.Fatalf("stopping after %d failing seeds", failures)
			}
		}
	}
}

// TestSeed replays one seed with its whole trace: go test ./test/sim/ -run TestSeed -seed N -v
func TestSeed(t *testing.T) {
	if *seedFlag == 0 {
		t.Skip("set -seed to replay one")
	}
	err := sim.Run(*seedFlag, *stepFlag)
	var f *sim.Failure
	if errors.As(err, &f) {
		for _, line := range f.Trace {
			t.Log(line)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}
