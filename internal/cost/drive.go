package cost

import (
	"math/big"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// EBS list prices in us-east-1, USD per month (of HoursPerMonth hours); other
// regions differ by up to about a third. The drive's cost is an estimate.
var (
	// volumeGBMonth is the price of a provisioned GB of each volume type.
	volumeGBMonth = map[v1alpha1.VolumeType]string{
		v1alpha1.VolumeTypeGP3: "0.08", v1alpha1.VolumeTypeGP2: "0.10",
		v1alpha1.VolumeTypeIO1: "0.125", v1alpha1.VolumeTypeIO2: "0.125",
		v1alpha1.VolumeTypeST1: "0.045", v1alpha1.VolumeTypeSC1: "0.015",
	}
	// gp3IOPSMonth and gp3MiBpsMonth price gp3's IOPS above 3000 and throughput above 125 MiB/s.
	gp3IOPSMonth, gp3MiBpsMonth = "0.005", "0.04"
	// ioIOPSMonth prices io1's and io2's provisioned IOPS (io2's first tier; higher tiers cost less).
	ioIOPSMonth = "0.065"
	// SnapshotGBMonth is the price of a GB of standard-tier snapshot storage.
	SnapshotGBMonth = "0.05"
)

// monthly is n units at a price per unit-month, as USD per hour.
func monthly(n int64, perMonth string) *big.Rat {
	r := new(big.Rat).Mul(big.NewRat(n, HoursPerMonth), parse(perMonth))
	return r
}

// VolumeRate is the hourly price of a drive's volume of sizeGiB (a GiB priced as a GB, as AWS bills volumes).
func VolumeRate(spec v1alpha1.XDriveSpec, sizeGiB int32) *big.Rat {
	if sizeGiB <= 0 {
		return new(big.Rat)
	}
	vt := spec.VolumeType
	if vt == "" {
		vt = v1alpha1.VolumeTypeGP3
	}
	r := monthly(int64(sizeGiB), volumeGBMonth[vt])
	switch vt {
	case v1alpha1.VolumeTypeGP3:
		r.Add(r, monthly(max(int64(spec.IOPS)-3000, 0), gp3IOPSMonth))
		r.Add(r, monthly(max(int64(spec.ThroughputMiBps)-125, 0), gp3MiBpsMonth))
	case v1alpha1.VolumeTypeIO1, v1alpha1.VolumeTypeIO2:
		r.Add(r, monthly(int64(spec.IOPS), ioIOPSMonth))
	}
	return r
}

// SnapshotRate is the hourly price of a drive's snapshots, estimated as one
// full copy of the drive: EBS stores a drive's snapshots incrementally, so
// they share the blocks that did not change, and it stores no block that was
// never written. The estimate is high for a mostly empty drive, low for one
// that changes much between many kept snapshots.
func SnapshotRate(snapshots, sizeGiB int32) *big.Rat {
	if snapshots <= 0 || sizeGiB <= 0 {
		return new(big.Rat)
	}
	return monthly(int64(sizeGiB), SnapshotGBMonth)
}

// ObserveDrive folds the drive's storage since asOf into its ledger at the
// rates recorded then, whenever the rates change (a volume made or deleted,
// a resize, the first snapshot or the last one gone), and records the new
// rates. It changes nothing while the rates stay the same, so it adds no
// status write of its own.
func ObserveDrive(xd *v1alpha1.XDrive, now time.Time) {
	st := &xd.Status
	volume, snapshots := "", ""
	if st.VolumeID != "" {
		volume = rate(VolumeRate(xd.Spec, max(st.SizeGiB, xd.Spec.SizeGiB)))
	}
	if st.SnapshotCount > 0 || st.LatestSnapshotID != "" {
		snapshots = rate(SnapshotRate(max(st.SnapshotCount, 1), max(st.SizeGiB, xd.Spec.SizeGiB)))
	}
	c := st.Cost
	if c == nil {
		if volume == "" && snapshots == "" {
			return
		}
		st.Cost = &v1alpha1.DriveCost{AsOf: metav1.NewTime(now), VolumeUSDPerHour: volume, SnapshotUSDPerHour: snapshots}
		return
	}
	if c.VolumeUSDPerHour == volume && c.SnapshotUSDPerHour == snapshots {
		return
	}
	at := maxTime(now, c.AsOf.Time)
	c.VolumeUSD = add(c.VolumeUSD, over(c.VolumeUSDPerHour, c.AsOf.Time, at))
	c.SnapshotUSD = add(c.SnapshotUSD, over(c.SnapshotUSDPerHour, c.AsOf.Time, at))
	c.AsOf, c.VolumeUSDPerHour, c.SnapshotUSDPerHour = metav1.NewTime(at), volume, snapshots
}

// rate is an hourly rate as stored (9 decimals); "" for none.
func rate(r *big.Rat) string {
	if r.Sign() == 0 {
		return ""
	}
	return format(r, 9)
}

// DriveUSD is a drive's estimated storage cost up to now: the volume's and the snapshots'.
func DriveUSD(st *v1alpha1.XDriveStatus, now time.Time) (volume, snapshots string) {
	c := st.Cost
	if c == nil {
		return "0", "0"
	}
	v := new(big.Rat).Add(parse(c.VolumeUSD), over(c.VolumeUSDPerHour, c.AsOf.Time, now))
	s := new(big.Rat).Add(parse(c.SnapshotUSD), over(c.SnapshotUSDPerHour, c.AsOf.Time, now))
	return format(v, usdDecimals), format(s, usdDecimals)
}
