package cost

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// launch records an instance as the Workstation controller does: launched at at, at price.
func launch(st *v1alpha1.WorkstationStatus, id string, at time.Time, price string) {
	lt := metav1.NewTime(at)
	st.InstanceID, st.LaunchTime, st.PricePerHour = id, &lt, price
}

// end closes the instance as closeTeardown does, then forgets it.
func end(st *v1alpha1.WorkstationStatus, at time.Time) {
	Close(st, st.InstanceID, at)
	st.InstanceID, st.LaunchTime, st.PricePerHour = "", nil, ""
	Observe(st, at)
}

func TestRelaunchesAddUp(t *testing.T) {
	st := &v1alpha1.WorkstationStatus{}
	launch(st, "i-1", t0, "0.5")
	Observe(st, t0.Add(time.Minute))
	Observe(st, t0.Add(30*time.Minute)) // a later reconcile changes nothing
	if got := InstanceUSD(st, t0.Add(time.Hour)); got != "0.5" {
		t.Fatalf("one hour at $0.5/h so far = %s", got)
	}
	end(st, t0.Add(2*time.Hour))
	launch(st, "i-2", t0.Add(5*time.Hour), "0.25")
	Observe(st, t0.Add(5*time.Hour))
	end(st, t0.Add(9*time.Hour))
	if st.Cost.InstanceUSD != "2" || st.Cost.Launches != 2 || st.Cost.Open != nil {
		t.Fatalf("2 h at 0.5 plus 4 h at 0.25: ledger %+v", st.Cost)
	}
	if got := InstanceUSD(st, t0.Add(100*time.Hour)); got != "2" {
		t.Fatalf("a stopped Workstation costs nothing more: %s", got)
	}
}

// A status write that is redone from the read before it (a lost write, or a
// manager restarted in between) and one redone after it landed both count the launch once.
func TestReplayCountsOnce(t *testing.T) {
	st := &v1alpha1.WorkstationStatus{}
	launch(st, "i-1", t0, "1")
	Observe(st, t0)
	before := st.DeepCopy()

	Close(st, "i-1", t0.Add(3*time.Hour))
	landed := st.DeepCopy()
	Close(st, "i-1", t0.Add(4*time.Hour)) // a replay of the close after it landed
	Observe(st, t0.Add(4*time.Hour))
	if st.Cost.InstanceUSD != "3" || st.Cost.Launches != 1 {
		t.Fatalf("a replayed close added again: %+v", st.Cost)
	}

	Close(before, "i-1", t0.Add(3*time.Hour)) // the lost write, redone from the old read
	if before.Cost.InstanceUSD != landed.Cost.InstanceUSD || before.Cost.Launches != 1 {
		t.Fatalf("a redone close differs: %+v, want %+v", before.Cost, landed.Cost)
	}
}

// The ledger is in status, so a new manager carries on from what the old one
// wrote: the open launch's time while nothing ran still counts, from EC2's launch time.
func TestManagerRestart(t *testing.T) {
	st := &v1alpha1.WorkstationStatus{}
	launch(st, "i-1", t0, "0.1")
	// The launch's own write was lost: the next manager adopts the instance an hour later.
	Observe(st, t0.Add(time.Hour))
	if !st.Cost.Open.Since.Time.Equal(t0) {
		t.Fatalf("counted from %v, want EC2's launch time %v", st.Cost.Open.Since, t0)
	}
	restarted := st.DeepCopy()
	Observe(restarted, t0.Add(5*time.Hour))
	Close(restarted, "i-1", t0.Add(10*time.Hour))
	if restarted.Cost.InstanceUSD != "1" {
		t.Fatalf("10 h at 0.1 = %s", restarted.Cost.InstanceUSD)
	}
}

func TestPriceChangeMidLife(t *testing.T) {
	st := &v1alpha1.WorkstationStatus{}
	launch(st, "i-1", t0, "0.2")
	Observe(st, t0)
	st.PricePerHour = "0.4" // e.g. the spot price, refreshed
	Observe(st, t0.Add(2*time.Hour))
	Observe(st, t0.Add(2*time.Hour)) // replayed: nothing more
	if got := InstanceUSD(st, t0.Add(3*time.Hour)); got != "0.8" {
		t.Fatalf("2 h at 0.2 + 1 h at 0.4 = %s", got)
	}
	Close(st, "i-1", t0.Add(3*time.Hour))
	if st.Cost.InstanceUSD != "0.8" || st.Cost.Launches != 1 {
		t.Fatalf("ledger %+v", st.Cost)
	}
}

// A spot interruption ends the launch when the instance went, not when the
// operator noticed; the relaunch is a new launch at its own price.
func TestSpotInterruption(t *testing.T) {
	st := &v1alpha1.WorkstationStatus{}
	launch(st, "i-spot", t0, "0.0312")
	Observe(st, t0)
	Close(st, "i-spot", t0.Add(90*time.Minute))
	st.InstanceID, st.LaunchTime, st.PricePerHour = "", nil, ""
	Observe(st, t0.Add(95*time.Minute))
	launch(st, "i-again", t0.Add(100*time.Minute), "0.0416")
	Observe(st, t0.Add(100*time.Minute))
	if got := InstanceUSD(st, t0.Add(160*time.Minute)); got != "0.0884" {
		t.Fatalf("1.5 h at 0.0312 + 1 h at 0.0416 = %s", got)
	}
}

// An instance replaced without a close (a bug elsewhere) ends when it is seen
// replaced; an unknown price counts no time but keeps the launch.
func TestUnclosedAndUnpriced(t *testing.T) {
	st := &v1alpha1.WorkstationStatus{}
	launch(st, "i-1", t0, "")
	Observe(st, t0)
	launch(st, "i-2", t0.Add(time.Hour), "1")
	Observe(st, t0.Add(time.Hour))
	if st.Cost.Launches != 1 || st.Cost.InstanceUSD != "0" || st.Cost.Open.InstanceID != "i-2" {
		t.Fatalf("ledger %+v", st.Cost)
	}
}

// A status from before the ledger: the closing launch counts from its launch time.
func TestCloseWithoutLedger(t *testing.T) {
	st := &v1alpha1.WorkstationStatus{}
	launch(st, "i-old", t0, "2")
	Close(st, "i-old", t0.Add(time.Hour))
	if st.Cost == nil || st.Cost.InstanceUSD != "2" || st.Cost.Launches != 1 {
		t.Fatalf("ledger %+v", st.Cost)
	}
}

func TestDriveStorage(t *testing.T) {
	xd := &v1alpha1.XDrive{Spec: v1alpha1.XDriveSpec{SizeGiB: 730, VolumeType: v1alpha1.VolumeTypeGP3}}
	ObserveDrive(xd, t0)
	if xd.Status.Cost != nil {
		t.Fatalf("a drive with no volume and no snapshot has no ledger: %+v", xd.Status.Cost)
	}
	xd.Status.VolumeID, xd.Status.SizeGiB = "vol-1", 730
	ObserveDrive(xd, t0)
	ObserveDrive(xd, t0.Add(time.Hour)) // nothing changed: nothing written
	if c := xd.Status.Cost; c.VolumeUSDPerHour != "0.08" || !c.AsOf.Time.Equal(t0) {
		t.Fatalf("730 GB of gp3 at $0.08/GB-month is $0.08/h: %+v", c)
	}
	// Stopped: the volume is archived as a snapshot 10 hours later.
	xd.Status.VolumeID, xd.Status.SnapshotCount, xd.Status.LatestSnapshotID = "", 1, "snap-1"
	ObserveDrive(xd, t0.Add(10*time.Hour))
	replay := xd.DeepCopy()
	ObserveDrive(replay, t0.Add(10*time.Hour))
	if c := xd.Status.Cost; c.VolumeUSD != "0.8" || c.VolumeUSDPerHour != "" || c.SnapshotUSDPerHour != "0.05" {
		t.Fatalf("ledger %+v", c)
	}
	if replay.Status.Cost.VolumeUSD != "0.8" {
		t.Fatalf("a replay added again: %+v", replay.Status.Cost)
	}
	v, s := DriveUSD(&xd.Status, t0.Add(30*time.Hour))
	if v != "0.8" || s != "1" {
		t.Fatalf("volume %s, snapshots %s; want 0.8 and 20 h at 0.05", v, s)
	}
}

func TestVolumeRates(t *testing.T) {
	cases := []struct {
		spec v1alpha1.XDriveSpec
		want string // USD per month
	}{
		{v1alpha1.XDriveSpec{VolumeType: v1alpha1.VolumeTypeGP3}, "8"},
		{v1alpha1.XDriveSpec{VolumeType: v1alpha1.VolumeTypeGP3, IOPS: 4000, ThroughputMiBps: 250}, "18"},
		{v1alpha1.XDriveSpec{VolumeType: v1alpha1.VolumeTypeIO2, IOPS: 1000}, "77.5"},
		{v1alpha1.XDriveSpec{VolumeType: v1alpha1.VolumeTypeGP2}, "10"},
		{v1alpha1.XDriveSpec{}, "8"},
	}
	for _, c := range cases {
		r := VolumeRate(c.spec, 100)
		r.Mul(r, parse("730"))
		if got := format(r, 6); got != c.want {
			t.Errorf("%+v: $%s a month, want $%s", c.spec, got, c.want)
		}
	}
}

func TestFormat(t *testing.T) {
	for in, want := range map[string]string{"": "$0.00", "0.0884": "$0.09", "0.00421": "$0.0042", "12.345": "$12.35", "1": "$1.00"} {
		if got := Format(in); got != want {
			t.Errorf("Format(%q) = %s, want %s", in, got, want)
		}
	}
	if got := Sum("0.1", "0.2", ""); got != "0.3" {
		t.Errorf("Sum = %s", got)
	}
}

// EC2 bills a launch at least a minute: a launch that ended within its first
// minute, or in the very second it started, counts a minute, at the prices
// it ran at; a longer one counts its own time.
func TestShortLaunchBilledAMinute(t *testing.T) {
	for _, c := range []struct {
		name  string
		lived time.Duration
		want  string
	}{
		{"ended in its first second", 0, "0.06"},
		{"lived a second", time.Second, "0.06"},
		{"lived 59 s", 59 * time.Second, "0.06"},
		{"lived 90 s", 90 * time.Second, "0.09"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &v1alpha1.WorkstationStatus{}
			launch(st, "i-1", t0, "3.6")
			Observe(st, t0)
			end(st, t0.Add(c.lived))
			if st.Cost.InstanceUSD != c.want || st.Cost.Month.InstanceUSD != c.want {
				t.Fatalf("at $3.6/h: ledger %+v, month %+v; want %s", st.Cost, st.Cost.Month, c.want)
			}
		})
	}

	// The price changed 20 s in: 20 s at the old price, the rest of the minute at the new.
	st := &v1alpha1.WorkstationStatus{}
	launch(st, "i-1", t0, "3.6")
	Observe(st, t0)
	st.PricePerHour = "7.2"
	Observe(st, t0.Add(20*time.Second))
	end(st, t0.Add(30*time.Second))
	if st.Cost.InstanceUSD != "0.1" {
		t.Fatalf("20 s at $3.6/h and 40 s at $7.2/h: ledger %+v, want 0.1", st.Cost)
	}

	// A launch the ledger saw end without a close (Observe) counts its minute too.
	st = &v1alpha1.WorkstationStatus{}
	launch(st, "i-1", t0, "3.6")
	Observe(st, t0)
	st.InstanceID, st.LaunchTime = "", nil
	Observe(st, t0.Add(5*time.Second))
	if st.Cost.InstanceUSD != "0.06" {
		t.Fatalf("a launch seen gone after 5 s: ledger %+v, want 0.06", st.Cost)
	}
}
