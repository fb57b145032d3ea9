package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkstationCost is what a Workstation's instances have cost over its whole
// life, in USD: the instance time of every launch times the price seen when
// it was launched. It is a ledger: launches that ended are added to
// instanceUSD once (lastCountedInstanceID keeps a replayed write from adding
// one twice), and the current launch is counted from open.since at
// open.pricePerHour until it ends. Readers add the open part up to now.
type WorkstationCost struct {
	// instanceUSD is the cost of the instance time counted so far: every
	// ended launch (at least a minute of each, as EC2 bills), and the
	// current one up to open.since.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^[0-9]{1,12}(\.[0-9]{1,6})?$`
	InstanceUSD string `json:"instanceUSD,omitempty"`

	// launches counts the launches whose time instanceUSD includes in full.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Launches int32 `json:"launches,omitempty"`

	// lastCountedInstanceID is the last instance whose time was added to
	// instanceUSD when it ended: it is never added again.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	LastCountedInstanceID string `json:"lastCountedInstanceID,omitempty"`

	// open is the current launch's time not yet in instanceUSD.
	// +optional
	Open *OpenLaunchCost `json:"open,omitempty"`

	// month is the share of instanceUSD spent in the current calendar month
	// (UTC); it starts again at zero when the month turns.
	// +optional
	Month *MonthCost `json:"month,omitempty"`
}

// OpenLaunchCost is the current instance, counted from since at pricePerHour.
type OpenLaunchCost struct {
	// instanceID is the current instance.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	InstanceID string `json:"instanceID,omitempty"`

	// since is when its time not yet in instanceUSD began: its launch, or the
	// last change of its price.
	// +required
	Since metav1.Time `json:"since,omitempty"`

	// pricePerHour is its price since then, USD per hour; absent when unknown
	// (then its time is not counted).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	PricePerHour string `json:"pricePerHour,omitempty"`
}

// DriveCost is an estimate of what an XDrive's own storage has cost over its
// life, in USD: its live volume's size (and provisioned IOPS and throughput)
// and its snapshots' storage, at us-east-1 list prices (docs/cost.md). The
// amounts are folded up to asOf whenever a rate changes; readers add the
// rates' time since asOf.
type DriveCost struct {
	// volumeUSD is the estimated cost of the drive's volumes up to asOf.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^[0-9]{1,12}(\.[0-9]{1,6})?$`
	VolumeUSD string `json:"volumeUSD,omitempty"`

	// snapshotUSD is the estimated cost of the drive's snapshot storage up to asOf.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^[0-9]{1,12}(\.[0-9]{1,6})?$`
	SnapshotUSD string `json:"snapshotUSD,omitempty"`

	// asOf is when the amounts were last brought up to date.
	// +required
	AsOf metav1.Time `json:"asOf,omitempty"`

	// volumeUSDPerHour is the rate of the drive's volume since asOf; absent when it has none.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^[0-9]{1,6}(\.[0-9]{1,9})?$`
	VolumeUSDPerHour string `json:"volumeUSDPerHour,omitempty"`

	// snapshotUSDPerHour is the rate of the drive's snapshot storage since asOf; absent when it has none.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^[0-9]{1,6}(\.[0-9]{1,9})?$`
	SnapshotUSDPerHour string `json:"snapshotUSDPerHour,omitempty"`
}
