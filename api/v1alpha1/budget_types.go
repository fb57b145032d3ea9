package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClassBudget is a class's monthly limit on what its Workstations' instances
// cost, in USD, counted per calendar month (UTC) from status.cost.month. At
// 80% of a limit the Workstations it covers get a warning (an Event and a
// notice on the instance); at 100% they stop safely (flush, snapshot) and
// launch no more until the month turns or the limit is raised. spec.state
// stays the user's.
// +kubebuilder:validation:MinProperties=1
type ClassBudget struct {
	// monthlyUSDPerNamespace limits the month's spend of all the class's
	// Workstations in one namespace, summed.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:Pattern=`^[0-9]{1,9}(\.[0-9]{1,6})?$`
	MonthlyUSDPerNamespace string `json:"monthlyUSDPerNamespace,omitempty"`

	// monthlyUSDPerWorkstation limits the month's spend of each of the class's Workstations.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:Pattern=`^[0-9]{1,9}(\.[0-9]{1,6})?$`
	MonthlyUSDPerWorkstation string `json:"monthlyUSDPerWorkstation,omitempty"`
}

// BudgetScope is which of a class's limits a Workstation's spend met.
// +kubebuilder:validation:Enum=Namespace;Workstation
type BudgetScope string

const (
	// BudgetScopeNamespace: the namespace's spend in the class (monthlyUSDPerNamespace).
	BudgetScopeNamespace BudgetScope = "Namespace"
	// BudgetScopeWorkstation: the Workstation's own spend (monthlyUSDPerWorkstation).
	BudgetScopeWorkstation BudgetScope = "Workstation"
)

// BudgetState is where a Workstation stands against its class's budget this
// month: when it was warned, and when the limit stopped it and until when.
// It is cleared when the month turns, and its stop when the limit is raised
// or removed.
type BudgetState struct {
	// month is the first instant (UTC) of the calendar month this state is about.
	// +required
	Month metav1.Time `json:"month,omitempty"`

	// warningTime is when the 80% warning was sent this month.
	// +optional
	WarningTime *metav1.Time `json:"warningTime,omitempty"`

	// exceededTime is when the spend met a limit and the Workstation was
	// stopped for it; absent while it may run.
	// +optional
	ExceededTime *metav1.Time `json:"exceededTime,omitempty"`

	// scope is the limit met (or, before that, the one nearest).
	// +optional
	Scope BudgetScope `json:"scope,omitempty"`

	// limitUSD is that limit.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:Pattern=`^[0-9]{1,9}(\.[0-9]{1,6})?$`
	LimitUSD string `json:"limitUSD,omitempty"`

	// spentUSD is the month's spend against that limit when it was last decided (warned or stopped).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:Pattern=`^[0-9]{1,12}(\.[0-9]{1,6})?$`
	SpentUSD string `json:"spentUSD,omitempty"`

	// stoppedUntil is when a budget stop ends on its own: the month's turn.
	// +optional
	StoppedUntil *metav1.Time `json:"stoppedUntil,omitempty"`
}

// MonthCost is the share of a ledger spent in one calendar month (UTC).
type MonthCost struct {
	// start is the first instant of the month, UTC.
	// +required
	Start metav1.Time `json:"start,omitempty"`

	// instanceUSD is the instance time counted in the month so far: the
	// month's share of every ended launch, and of the current one up to open.since.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^[0-9]{1,12}(\.[0-9]{1,6})?$`
	InstanceUSD string `json:"instanceUSD,omitempty"`
}

// WorkstationClassStatus is what the operator keeps of a class.
type WorkstationClassStatus struct {
	// retiredSpend is, per namespace, what the class's Workstations deleted
	// this month spent in it: a namespace's budget counts it with its live
	// Workstations', so that deleting a Workstation and creating another
	// does not start its sum afresh. Kept only while the class sets
	// monthlyUSDPerNamespace; an entry of an earlier month is replaced.
	// +optional
	// +listType=map
	// +listMapKey=namespace
	// +kubebuilder:validation:MaxItems=4096
	RetiredSpend []RetiredSpend `json:"retiredSpend,omitempty"`
}

// RetiredSpend is what a namespace's deleted Workstations of a class spent in one month.
type RetiredSpend struct {
	// namespace is the Workstations' namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`

	// month is the first instant (UTC) of the month counted.
	// +required
	Month metav1.Time `json:"month,omitempty"`

	// instanceUSD is the instance time the deleted Workstations spent in the month.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:Pattern=`^[0-9]{1,12}(\.[0-9]{1,6})?$`
	InstanceUSD string `json:"instanceUSD,omitempty"`

	// workstations are the UIDs of the newest Workstations counted (at
	// most 32): a deletion retried after a crash is counted once.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=64
	Workstations []string `json:"workstations,omitempty"`
}
