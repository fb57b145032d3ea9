// Package fakeec2 is an in-process, stateful, deterministic fake of the EC2
// calls xdrive makes (and of SSM GetParameter). Unlike moto it keeps the
// states in between (pending instances and snapshots, modifying volumes)
// until the test applies a Transition, checks what real EC2 checks, and
// records data lineage so that a test can prove no write was lost.
package fakeec2

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// InstanceType is an instance type the fake offers.
type InstanceType struct {
	Name string
	Arch string // x86_64 or arm64
	GPUs int32
	// SpotPrice is the USD/hour price in the first zone; each later zone adds 0.001.
	SpotPrice float64
	// NoNVMe marks a Xen type: EbsInfo.NvmeSupport is unsupported.
	NoNVMe bool
}

// Options configures a Fake. Zero fields get the defaults below.
type Options struct {
	// Cluster is the value of the xdrive.io/cluster tag that marks the operator's resources.
	Cluster string
	// Region is the region's name; default: the region of Zones, else us-east-1.
	// A fake outside us-east-1 numbers its IDs apart, so that two linked
	// regions never share an ID.
	Region string
	// Now is the clock; default: a fixed instant, 2026-01-01T00:00:00Z. It is
	// called with the fake locked, so it must not call the fake.
	Now func() time.Time
	// Zones default to the region's a, b and c zones: us-east-1a, us-east-1b and us-east-1c.
	Zones []string
	// InstanceTypes default to t3.large, m5.large, g5.xlarge and g4dn.xlarge.
	InstanceTypes []InstanceType
	// SpotPrices overrides prices per "type/zone".
	SpotPrices map[string]string
	// Subnets maps a zone to its default subnet; default subnet-<zone index+1>.
	Subnets map[string]string
	// Parameters maps SSM parameter names to AMI IDs; defaults cover the
	// operator's AL2023 and Deep Learning AMI parameters. Their values are the
	// only images RunInstances accepts.
	Parameters map[string]string
	// OwnerID is the account ID; default 123456789012.
	OwnerID string
	// KeepRootVolumes makes every image's root volume outlive its instance
	// (DeleteOnTermination false in the image's mapping), as some AMIs do.
	KeepRootVolumes bool
	// NewInstanceLag, if set, says how many listings leave out each new
	// instance (EC2's listings lag behind a launch; a lookup by its ID finds
	// it). It is called with the fake locked, so it must not call the fake.
	NewInstanceLag func() int
	// Limiter, if set, is waited on before each call, as the operator's
	// request buckets wait before each call to EC2 (cloud.EC2RateLimiter).
	Limiter interface {
		Wait(ctx context.Context, operation string) error
	}
}

// DefaultInstanceTypes are the types offered when Options.InstanceTypes is empty.
var DefaultInstanceTypes = []InstanceType{
	{Name: "t3.large", Arch: "x86_64", SpotPrice: 0.025},
	{Name: "m5.large", Arch: "x86_64", SpotPrice: 0.035},
	{Name: "g5.xlarge", Arch: "x86_64", GPUs: 1, SpotPrice: 0.40},
	{Name: "g4dn.xlarge", Arch: "x86_64", GPUs: 1, SpotPrice: 0.22},
}

var defaultEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const defaultRegion = "us-east-1"

func (o *Options) setDefaults() {
	if o.Now == nil {
		o.Now = func() time.Time { return defaultEpoch }
	}
	switch {
	case o.Region == "" && len(o.Zones) > 0:
		o.Region = o.Zones[0][:len(o.Zones[0])-1]
	case o.Region == "":
		o.Region = defaultRegion
	}
	if len(o.Zones) == 0 {
		o.Zones = []string{o.Region + "a", o.Region + "b", o.Region + "c"}
	}
	if len(o.InstanceTypes) == 0 {
		o.InstanceTypes = DefaultInstanceTypes
	}
	if o.Subnets == nil {
		o.Subnets = map[string]string{}
		for i, z := range o.Zones {
			o.Subnets[z] = fmt.Sprintf("subnet-%017x", i+1)
		}
	}
	if o.Parameters == nil {
		o.Parameters = map[string]string{
			"/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64":                           "ami-00000000000000a01",
			"/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64":                            "ami-00000000000000a02",
			"/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id": "ami-00000000000000d01",
			"/aws/service/deeplearning/ami/arm64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id":  "ami-00000000000000d02",
		}
	}
	if o.OwnerID == "" {
		o.OwnerID = "123456789012"
	}
}

// Fake is the fake EC2 and SSM. All methods are safe for concurrent use.
type Fake struct {
	mu   sync.Mutex
	opts Options

	lastID    int64 // shared by every generated ID, so IDs sort in creation order
	lastWrite int64

	instances     registry[instance]
	volumes       registry[volume]
	snapshots     registry[snapshot]
	groups        registry[group]
	modifications []*modification
	tokens        map[string]launchRecord
	writes        []WriteRecord

	held        map[string]bool
	hidden      map[string]hiding
	noCapacity  map[string]bool // capacityKey
	notOffered  map[string]bool // "type/zone"
	spotPrices  map[string]string
	injections  map[string][]*injection
	calls       map[string]int
	violations  []string
	typesByName map[string]InstanceType
	fault       Fault

	regions    map[string]*Fake // linked regions, by name (Link); this one included
	failCopies int              // copies still to fail (FailCopies)
}

// hiding leaves an instance out of listings: the next calls that would list
// it, and none after until: EC2's listings lag by seconds to minutes, not
// for ever.
type hiding struct {
	calls int
	until time.Time
}

// listingLag bounds how long an instance is left out of listings (within
// the operator's 3-minute look for a dropped launch's instance).
const listingLag = 2 * time.Minute

// Fault decides, for each call of a mutating action, whether it fails before
// taking effect (effected false) or after (effected true, the answer lost).
// It is called with the fake locked, so it must not call the fake.
type Fault func(action string, effected bool) error

// mutating are the actions a Fault is asked about.
var mutating = map[string]bool{
	"RunInstances": true, "TerminateInstances": true, "AttachVolume": true, "DeleteVolume": true, "ModifyVolume": true,
	"CreateSnapshot": true, "CopySnapshot": true, "DeleteSnapshot": true, "CreateTags": true, "CreateSecurityGroup": true,
	"AuthorizeSecurityGroupIngress": true, "RevokeSecurityGroupIngress": true, "DeleteSecurityGroup": true,
}

// SetFault installs a fault model for every mutating call; nil removes it.
func (f *Fake) SetFault(fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fault
}

var (
	_ cloud.EC2API = (*Fake)(nil)
	_ cloud.SSMAPI = (*Fake)(nil)
)

// New returns an empty region with the given options.
func New(o Options) *Fake {
	o.setDefaults()
	o.Zones, o.InstanceTypes = slices.Clone(o.Zones), slices.Clone(o.InstanceTypes)
	o.Subnets, o.Parameters = copyMap(o.Subnets), copyMap(o.Parameters)
	f := &Fake{
		opts:        o,
		instances:   newRegistry[instance](),
		volumes:     newRegistry[volume](),
		snapshots:   newRegistry[snapshot](),
		groups:      newRegistry[group](),
		tokens:      map[string]launchRecord{},
		held:        map[string]bool{},
		hidden:      map[string]hiding{},
		noCapacity:  map[string]bool{},
		notOffered:  map[string]bool{},
		spotPrices:  copyMap(o.SpotPrices),
		injections:  map[string][]*injection{},
		calls:       map[string]int{},
		typesByName: map[string]InstanceType{},
	}
	for _, t := range o.InstanceTypes {
		f.typesByName[t.Name] = t
	}
	if o.Region != defaultRegion {
		// Writes too: a copy carries its data to another region, whose writes go on top.
		f.lastID, f.lastWrite = idBase(o.Region), idBase(o.Region)
	}
	f.seedDefaultGroup()
	f.snapshots.add(ImageSnapshotID, &snapshot{id: ImageSnapshotID, state: SnapshotCompleted, size: rootVolumeGiB,
		startTime: defaultEpoch, completionTime: defaultEpoch, tags: map[string]string{}})
	return f
}

func (f *Fake) now() time.Time { return f.opts.Now() }

// newID returns the next ID with the given prefix, e.g. i-00000000000000001.
func (f *Fake) newID(prefix string) string {
	f.lastID++
	return fmt.Sprintf("%s-%017x", prefix, f.lastID)
}

// registry keeps resources by ID, in creation order.
type registry[T any] struct {
	byID  map[string]*T
	order []*T
}

func newRegistry[T any]() registry[T] { return registry[T]{byID: map[string]*T{}} }

func (r *registry[T]) add(id string, item *T) {
	r.byID[id] = item
	r.order = append(r.order, item)
}

// kind says how a registry's items are named, deleted and reported missing.
type kind[T any] struct {
	id       func(*T) string
	deleted  func(*T) bool
	notFound string // the error code for an unknown ID
	param    string // the request parameter that names one
}

// live returns the items not deleted, or those named by ids.
func (r *registry[T]) live(k kind[T], ids []string) ([]*T, error) {
	list := slices.DeleteFunc(slices.Clone(r.order), k.deleted)
	if len(ids) == 0 {
		return list, nil
	}
	return pick(list, k.id, ids, k.notFound)
}

// liveOne returns the item named id.
func (r *registry[T]) liveOne(k kind[T], id string) (*T, error) {
	if id == "" {
		return nil, apiError(codeMissingParameter, "The request must contain the parameter %s", k.param)
	}
	list, err := r.live(k, []string{id})
	if err != nil {
		return nil, err
	}
	return list[0], nil
}

// AWS error codes the fake returns.
const (
	codeInstanceNotFound     = "InvalidInstanceID.NotFound"
	codeVolumeNotFound       = "InvalidVolume.NotFound"
	codeSnapshotNotFound     = "InvalidSnapshot.NotFound"
	codeModificationNotFound = "InvalidVolumeModification.NotFound"
	codeSubnetNotFound       = "InvalidSubnetID.NotFound"
	codeAMINotFound          = "InvalidAMIID.NotFound"
	codeVolumeInUse          = "VolumeInUse"
	codeIncorrectState       = "IncorrectState"
	codeModificationState    = "IncorrectModificationState"
	codeModificationRate     = "VolumeModificationRateExceeded"
	codeNoCapacity           = "InsufficientInstanceCapacity"
	codeUnsupported          = "Unsupported"
	codeTokenMismatch        = "IdempotentParameterMismatch"
	codeInvalidValue         = "InvalidParameterValue"
	codeInvalidCombination   = "InvalidParameterCombination"
	codeMissingParameter     = "MissingParameter"
	codeInvalidInstanceType  = "InvalidInstanceType"
	codeInvalidID            = "InvalidID"
	codeFilterLimit          = "FilterLimitExceeded"
	codeTagLimit             = "TagLimitExceeded"
)

var serverCodes = map[string]bool{"InternalError": true, "InternalFailure": true, "ServiceUnavailable": true, "Unavailable": true}

// apiError builds the error EC2 would return for code.
func apiError(code, format string, args ...any) error {
	fault := smithy.FaultClient
	if serverCodes[code] {
		fault = smithy.FaultServer
	}
	return &smithy.GenericAPIError{Code: code, Message: fmt.Sprintf(format, args...), Fault: fault}
}

type injection struct {
	code        string
	afterEffect bool
	times       int
}

// InjectError makes the next times calls of action (e.g. "RunInstances") fail
// with code. With afterEffect the call takes effect first and its answer is
// lost. Injections for one action are used in the order they were made.
func (f *Fake) InjectError(action, code string, afterEffect bool, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if times > 0 {
		f.injections[action] = append(f.injections[action], &injection{code: code, afterEffect: afterEffect, times: times})
	}
}

// takeInjection uses one call of the first injection for action, if any.
func (f *Fake) takeInjection(action string) *injection {
	queue := f.injections[action]
	if len(queue) == 0 {
		return nil
	}
	inj := queue[0]
	if inj.times--; inj.times == 0 {
		f.injections[action] = queue[1:]
	}
	return inj
}

// call runs one API call under the lock: it counts it, and applies any injected error.
func call[Out any](ctx context.Context, f *Fake, action string, do func() (*Out, error)) (*Out, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.opts.Limiter != nil {
		if err := f.opts.Limiter.Wait(ctx, action); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[action]++
	inj := f.takeInjection(action)
	if inj != nil && !inj.afterEffect {
		return nil, apiError(inj.code, "%s failed (injected before effect)", action)
	}
	fault := f.fault
	if !mutating[action] {
		fault = nil
	}
	if fault != nil {
		if err := fault(action, false); err != nil {
			return nil, err
		}
	}
	out, err := do()
	if inj != nil && err == nil {
		return nil, apiError(inj.code, "%s failed (injected after effect)", action)
	}
	if fault != nil && err == nil {
		if ferr := fault(action, true); ferr != nil {
			return nil, ferr
		}
	}
	return out, err
}

// Calls returns how many times each action was called.
func (f *Fake) Calls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.calls)
}

// ResetCalls sets every call count to zero.
func (f *Fake) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.calls)
}

// Violations lists the mutating calls made on resources without the cluster's tag.
func (f *Fake) Violations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.violations...)
}

// audit records action on a resource whose tags do not name the cluster.
func (f *Fake) audit(action, id string, tags map[string]string) {
	if tags[cloud.TagCluster] != f.opts.Cluster {
		f.violations = append(f.violations, fmt.Sprintf("%s %s: not tagged %s=%s", action, id, cloud.TagCluster, f.opts.Cluster))
	}
}

// pick keeps the items named by ids, or fails with notFound naming the unknown IDs.
func pick[T any](items []*T, idOf func(*T) string, ids []string, notFound string) ([]*T, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var out []*T
	for _, it := range items {
		if want[idOf(it)] {
			out = append(out, it)
			delete(want, idOf(it))
		}
	}
	if len(want) > 0 {
		var missing []string
		for _, id := range ids {
			if want[id] {
				missing = append(missing, id)
			}
		}
		return nil, apiError(notFound, "The ID '%s' does not exist", strings.Join(missing, ", "))
	}
	return out, nil
}

// checkMaxResults rejects a MaxResults outside [lo, hi], and one combined with explicit IDs.
func checkMaxResults(maxResults *int32, ids []string, lo, hi int32) error {
	if maxResults == nil {
		return nil
	}
	if len(ids) > 0 {
		return apiError(codeInvalidCombination, "MaxResults cannot be used with explicit IDs")
	}
	if *maxResults < lo || *maxResults > hi {
		return apiError(codeInvalidValue, "MaxResults must be between %d and %d", lo, hi)
	}
	return nil
}
