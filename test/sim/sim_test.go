package sim_test

import (
	"cmp"
	"errors"
	"flag"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// XDRIVE_SIM_FAILFAST (make mutants) stops at the first broken seed.
	failFast := os.Getenv("XDRIVE_SIM_FAILFAST") != ""
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for seed := range seedsCh {
				err := sim.Run(seed, *stepFlag)
				if err != nil {
					failed.Store(true)
				}
				errs <- err
			}
		})
	}
	for _, seed := range playOrder(first, uint64(n)) {
		if failFast && failed.Load() {
			break
		}
		seedsCh <- seed
	}
	close(seedsCh)
	wg.Wait()
	close(errs)
	var broken []*sim.Failure
	played := 0
	for err := range errs {
		played++
		var f *sim.Failure
		if errors.As(err, &f) {
			broken = append(broken, f)
		} else if err != nil {
			t.Error(err)
		}
	}
	slices.SortFunc(broken, func(a, b *sim.Failure) int { return cmp.Compare(a.Seed, b.Seed) })
	for i, f := range broken {
		if i < 3 {
			t.Error(f.Error())
		} else {
			first, _, _ := strings.Cut(f.Error(), "\n")
			t.Log(first)
		}
	}
	if len(broken) > 0 {
		first, _, _ := strings.Cut(broken[0].Error(), "\n")
		t.Fatalf("%d of %d seeds played broke an invariant; first failing %s", len(broken), played, first)
	}
	t.Logf("%d seeds of %d steps each kept every invariant", n, *stepFlag)
}

// playOrder is the seeds first..first+n-1, those named in
// XDRIVE_SIM_PLAY_FIRST (comma-separated; make mutants names the seed that
// killed a mutant last) first: the same seeds, in an order that fails fast.
func playOrder(first, n uint64) []uint64 {
	var order []uint64
	early := map[uint64]bool{}
	for f := range strings.SplitSeq(os.Getenv("XDRIVE_SIM_PLAY_FIRST"), ",") {
		if s, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64); err == nil && s >= first && s < first+n && !early[s] {
			early[s] = true
			order = append(order, s)
		}
	}
	for s := first; s < first+n; s++ {
		if !early[s] {
			order = append(order, s)
		}
	}
	return order
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

// TestSoakSeeds replays seeds of `make soak` that once broke an invariant,
// each named after the guard that fixed it.
func TestSoakSeeds(t *testing.T) {
	for name, seeds := range map[string][]uint64{
		// A stop under way, AWS reclaims the instance, no poll sees it
		// shutting down: its state reason at termination still halts (I6).
		"ReclaimSeenWhileTerminating": {251302760, 251299648, 251307456, 251309362, 251310921},
		// A later notice for another instance replaces the processed one of
		// the torn-down instance: the teardown keeps its interruption (I6).
		"InterruptionKeptWithTeardown": {251310020},
		// A notice for an earlier object's instance must not overwrite the
		// current instance's before the Workstation reads it (I6).
		"NoticeOfOtherInstanceKeepsCurrent": {251298337, 101699},
		// Stopped, re-pointed to another drive and started again before the
		// operator saw the stop: the instance on the earlier drive is stopped
		// (flush, snapshot) and the next launch takes the drive named.
		"DriveChangedWhileStopped": {574346004},
		// A Pending Workstation that now names another drive gives back the
		// lease of the one it named before, as a running one does.
		"PendingGivesBackEarlierDrive": {300007260, 300012562},
		// A launch dropped (class deleted, drive not ready) after its
		// RunInstances took effect with the answer lost, its instance missing
		// from the listings: its instance is found before the next launch, and
		// its spot notice halts it (I6).
		"UnconfirmedLaunchFound": {300000742, 400012329, 500003390},
		// The instance of a dropped reattach launch, once found, still gets
		// the kept volume: the reattach request stays with the unconfirmed
		// launch, and the drive keeps the volume for it.
		"UnconfirmedReattachKeepsVolume": {500001444, 500009918, 500010355, 500014379},
		// A launch dropped before its RunInstances waits out the lookup, and
		// then launches: it is not left Pending.
		"UnconfirmedLaunchExpires": {500000009, 500014510},
		// A launch dropped after its RunInstances was called is not followed
		// by another in the same reconcile: pending (and stopped) look for
		// the dropped launch's instance first (I2: two live instances). They
		// needed a stale read across a restart; TestNoLaunchBesideUnconfirmed
		// plays it within one process.
		"NoLaunchBesideUnconfirmed": {700006934, 700008542},
		// A Workstation that takes a free fork's lease and launches in the
		// same reconcile checks its restore first: a forged
		// status.restoreSnapshotID naming another installation's snapshot is
		// refused (I12).
		"FreeDriveRestoreChecked": {677},
		// The operator's release whose teardown record was lost, then the user
		// wants Running again: the status check's "released" ends the instance,
		// and the Workstation relaunches instead of staying Running unmounted.
		"LostReleaseEndsInstance": {400005351},
		// A fork's first volume, made from its source's snapshot, is the
		// fork's to the drive and to its Workstation once its status no
		// longer names that snapshot (a forged restore): the source is the
		// second owner of the snapshots it may come from. Before, a second
		// volume was launched beside it (920004727, I2), or it leaked
		// (910002508, I3). Both take another path since the launch is
		// written into the lease (RollbackRacingStart); the scenario
		// TestForkFirstVolumeKnownBySource plays the fork's case. 910002508's
		// own cause (that snapshot deleted from outside too) is
		// LaunchSnapshotGone's.
		"ForkFirstVolumeKnown": {920004727, 910002508},
		// A fork's first volume, never recorded (its status writes lost),
		// outlives its instance after the source's snapshot it came from
		// was deleted from outside and a spec change re-resolved the
		// restore: the launch tagged its volumes with that snapshot
		// (TagDriveSnapshot), so the drive still knows the volume, and
		// archives it with the fork's writes (I3: it leaked).
		"LaunchSnapshotGone": {990809223},
		// A rollback requested as the Workstation is started again: the
		// launch records its restore in the drive's lease first, so the
		// drive, reading its holder a version late, does not take the
		// rollback after the launch chose the newest snapshot (I14).
		"RollbackRacingStart": {574348045},
		// A relaunch that read the drive a whole stop cycle old (before its
		// first snapshot) restored a blank volume (I5): the launch's write
		// into the lease, with an optimistic lock on the drive as read, now
		// fails on such a read (TestRelaunchFromStaleDriveRefused).
		"RelaunchFromStaleDrive": {900000153},
		// A move abandoned after its CopySnapshot took effect with the answer
		// lost (the move records no copy ID): the copy is found by its tags
		// and deleted, not left in the other region (I18).
		"AbandonedCopyFoundByTags": {34, 104},
	} {
		t.Run(name, func(t *testing.T) {
			for _, seed := range seeds {
				if err := sim.Run(seed, *stepFlag); err != nil {
					t.Errorf("seed %d: %v", seed, err)
				}
			}
		})
	}
}
