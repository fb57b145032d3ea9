package sim_test

import (
	"errors"
	"flag"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
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
	// Seeds are independent worlds: play them on every core.
	workers := runtime.GOMAXPROCS(0)
	seedsCh := make(chan uint64)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for seed := range seedsCh {
				errs <- sim.Run(seed, *stepFlag)
			}
		})
	}
	for seed := first; seed < first+uint64(n); seed++ {
		seedsCh <- seed
	}
	close(seedsCh)
	wg.Wait()
	close(errs)
	failures := 0
	for err := range errs {
		if err == nil {
			continue
		}
		if failures++; failures <= 3 {
			t.Error(err.Error())
		} else {
			first, _, _ := strings.Cut(err.Error(), "\n")
			t.Log(first)
		}
	}
	if failures > 0 {
		t.Fatalf("%d of %d seeds broke an invariant", failures, n)
	}
	t.Logf("%d seeds of %d steps each kept I1-I5", n, *stepFlag)
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
