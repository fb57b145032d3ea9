// Package harness runs the operator against a real API server (envtest) and
// moto behind the fault proxy, with fake or simulated instances: for
// integration tests, benchmarks and the demo.
//
// Stack is the operator and its servers, with methods that return errors,
// for any program (the demo, test/e2e/demo). Harness adapts a Stack to a
// test: it makes the namespace and the moto account, fails the test on any
// error, cleans up when the test ends, and adds assertions (Eventually,
// Consistently, FindEvent).
package harness

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/go-logr/logr"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/operator"
	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/instancesim"
	"github.com/xdrive-io/xdrive/test/moto"
)

var quietLogs sync.Once

// Harness is one isolated operator for a test: a Stack in its own
// namespace and moto account. Its methods fail the test on any error.
type Harness struct {
	*Stack
	T testing.TB
	// Agent plays the instances, unless Config.Instances simulates them.
	Agent *FakeAgent
}

// Config tunes a harness.
type Config struct {
	Env *testenv.Env
	// Options are passed to operator.Setup; cluster, user-data and agent are filled in.
	Options operator.Options
	// Instances simulates the instances (test/instancesim) and reaches them
	// with the real SSH agent, instead of answering for them with Agent.
	Instances bool
	// AWS replaces the operator's AWS clients (see StackConfig.AWS).
	AWS func(cluster string) operator.AWS
	// Regions are the operator's regions besides moto.Region (--regions).
	Regions []string
	// NoDefaultClass leaves out the default WorkstationClass that New
	// otherwise makes sure exists (DefaultClass, shared by every harness of Env).
	NoDefaultClass bool
}

// DefaultClass is the default WorkstationClass of the tests: every namespace,
// and Workstations may set their own subnets, groups and images.
const DefaultClass = "xdrive-test-default"

// EnsureDefaultClass creates DefaultClass unless it exists. It is
// cluster-scoped, so the harnesses of one API server share it.
func EnsureDefaultClass(ctx context.Context, c client.Client) error {
	cls := &v1alpha1.WorkstationClass{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultClass, Annotations: map[string]string{v1alpha1.DefaultClassAnnotation: "true"}},
		Spec: v1alpha1.WorkstationClassSpec{
			NamespaceSelector: &metav1.LabelSelector{}, AllowWorkstationOverrides: ptr.To(true),
		},
	}
	if err := c.Create(ctx, cls); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating WorkstationClass %s: %w", DefaultClass, err)
	}
	return nil
}

// New starts the proxy and returns a harness whose manager is not running yet.
func New(t testing.TB, cfg Config) *Harness {
	t.Helper()
	quietLogs.Do(func() { ctrl.SetLogger(logr.Discard()) })
	h := &Harness{T: t, Agent: NewFakeAgent()}
	if !cfg.NoDefaultClass {
		if err := EnsureDefaultClass(context.Background(), cfg.Env.Client); err != nil {
			t.Fatal(err)
		}
	}
	sc := StackConfig{Env: cfg.Env, Namespace: testenv.CreateNamespace(t, cfg.Env.Client),
		MotoURL: moto.Shared(t).URL, Options: cfg.Options, AWS: cfg.AWS, Regions: cfg.Regions}
	if cfg.Instances {
		sc.Instances = &instancesim.Options{Dir: t.TempDir()}
	} else if sc.Options.Agent == nil {
		sc.Options.Agent = h.Agent
	}
	var err error
	if h.Stack, err = NewStack(sc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.report(h.Close()) })
	return h
}

// check fails the test on an error.
func (h *Harness) check(err error) {
	h.T.Helper()
	if err != nil {
		h.T.Fatal(err)
	}
}

// report marks the test failed on an error, and goes on.
func (h *Harness) report(err error) {
	h.T.Helper()
	if err != nil {
		h.T.Error(err)
	}
}

var bg = context.Background()

// must calls a read of the Stack and fails the test on its error.
func must[R any](h *Harness, read func(context.Context) (R, error)) R {
	h.T.Helper()
	v, err := read(bg)
	h.check(err)
	return v
}

// must1 calls a read of the Stack with one argument and fails the test on its error.
func must1[A, R any](h *Harness, read func(context.Context, A) (R, error), a A) R {
	h.T.Helper()
	v, err := read(bg, a)
	h.check(err)
	return v
}

// found1 calls a lookup of the Stack and fails the test on its error.
func found1[R any](h *Harness, lookup func(context.Context, string) (R, bool, error), id string) (R, bool) {
	h.T.Helper()
	v, ok, err := lookup(bg, id)
	h.check(err)
	return v, ok
}

// Start runs a fresh manager (a fresh process, as far as the operator can tell).
func (h *Harness) Start() { h.T.Helper(); h.check(h.Stack.Start()) }

// Stop ends the manager and waits for it.
func (h *Harness) Stop() { h.T.Helper(); h.report(h.Stack.Stop()) }

// Restart stops the manager and starts a new one.
func (h *Harness) Restart() { h.Stop(); h.Start() }

// Eventually polls cond until it holds or the timeout passes.
func (h *Harness) Eventually(timeout time.Duration, what string, cond func() (bool, string)) {
	h.T.Helper()
	h.check(Poll(bg, 100*time.Millisecond, timeout, what, func() (bool, string, error) {
		ok, detail := cond()
		return ok, detail, nil
	}))
}

// Consistently fails the test if cond stops holding at any check within d.
func (h *Harness) Consistently(d time.Duration, what string, cond func() (bool, string)) {
	h.T.Helper()
	deadline := time.Now().Add(d)
	for {
		if ok, detail := cond(); !ok {
			h.T.Fatalf("%s stopped holding: %s", what, detail)
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Create creates objects.
func (h *Harness) Create(objs ...client.Object) { h.T.Helper(); h.check(h.Stack.Create(bg, objs...)) }

// Delete deletes an object of the harness namespace by kind and name.
func (h *Harness) Delete(obj client.Object) { h.T.Helper(); h.check(h.Stack.Delete(bg, obj)) }

// Exists reports whether an object of the harness namespace is still stored.
func (h *Harness) Exists(obj client.Object, name string) bool {
	h.T.Helper()
	v, err := h.Stack.Exists(bg, obj, name)
	h.check(err)
	return v
}

// Drive reads an XDrive straight from the API server.
func (h *Harness) Drive(name string) *v1alpha1.XDrive {
	h.T.Helper()
	return must1(h, h.Stack.Drive, name)
}

// Workstation reads a Workstation straight from the API server.
func (h *Harness) Workstation(name string) *v1alpha1.Workstation {
	h.T.Helper()
	return must1(h, h.Stack.Workstation, name)
}

// UpdateWorkstation applies change to the Workstation, retrying on conflicts.
func (h *Harness) UpdateWorkstation(name string, change func(*v1alpha1.Workstation)) {
	h.T.Helper()
	h.check(h.Stack.UpdateWorkstation(bg, name, change))
}

// SetState sets a Workstation's spec.state.
func (h *Harness) SetState(name string, state v1alpha1.WorkstationState) {
	h.T.Helper()
	h.UpdateWorkstation(name, func(ws *v1alpha1.Workstation) { ws.Spec.State = state })
}

// Events lists the Events recorded about the object of the given kind and name.
func (h *Harness) Events(kind, name string) []eventsv1.Event {
	h.T.Helper()
	v, err := h.Stack.Events(bg, kind, name)
	h.check(err)
	return v
}

// FindEvent reports whether there is, and describes, the first Event about
// the object whose reason equals reason and whose note contains every word.
func (h *Harness) FindEvent(kind, name, reason string, words ...string) (bool, string) {
	h.T.Helper()
	var seen []string
	for _, e := range h.Events(kind, name) {
		seen = append(seen, e.Reason+": "+e.Note)
		if e.Reason != reason {
			continue
		}
		all := true
		for _, w := range words {
			all = all && strings.Contains(e.Note, w)
		}
		if all {
			return true, e.Reason + ": " + e.Note
		}
	}
	return false, fmt.Sprintf("events of %s %s: %q", kind, name, seen)
}

// AllInstances lists every instance of the cluster that moto knows, terminated ones included.
func (h *Harness) AllInstances() []ec2types.Instance {
	h.T.Helper()
	return must(h, h.Stack.AllInstances)
}

// Instances lists the cluster's instances in moto that are not terminated.
func (h *Harness) Instances() []ec2types.Instance { h.T.Helper(); return must(h, h.Stack.Instances) }

// WorkstationInstances lists every instance, in any state, tagged for the Workstation.
func (h *Harness) WorkstationInstances(name string) []ec2types.Instance {
	h.T.Helper()
	return must1(h, h.Stack.WorkstationInstances, name)
}

// LiveWorkstationInstances lists the Workstation's instances that are not terminated.
func (h *Harness) LiveWorkstationInstances(name string) []ec2types.Instance {
	h.T.Helper()
	return Live(h.WorkstationInstances(name))
}

// Instance returns one instance by ID, straight from moto.
func (h *Harness) Instance(id string) (ec2types.Instance, bool) {
	h.T.Helper()
	return found1(h, h.Stack.Instance, id)
}

// Volumes lists the cluster's volumes in moto.
func (h *Harness) Volumes() []ec2types.Volume { h.T.Helper(); return must(h, h.Stack.Volumes) }

// Volume returns one volume by ID, straight from moto.
func (h *Harness) Volume(id string) (ec2types.Volume, bool) {
	h.T.Helper()
	return found1(h, h.Stack.Volume, id)
}

// Snapshots lists the cluster's snapshots in moto.
func (h *Harness) Snapshots() []ec2types.Snapshot { h.T.Helper(); return must(h, h.Stack.Snapshots) }

// DriveSnapshots lists the snapshots tagged for the drive, in any state.
func (h *Harness) DriveSnapshots(name string) []ec2types.Snapshot {
	h.T.Helper()
	return must1(h, h.Stack.DriveSnapshots, name)
}

// OfferedZones returns the zones where moto offers an instance type.
func (h *Harness) OfferedZones(instanceType string) []string {
	h.T.Helper()
	return must1(h, h.Stack.OfferedZones, instanceType)
}

// DriveState waits for the drive's Ready reason to equal state.
func (h *Harness) DriveState(name, state string) func() (bool, string) {
	return func() (bool, string) {
		xd := h.Drive(name)
		_, reason := v1alpha1.ReadyReason(xd.Status.Conditions)
		return reason == state, fmt.Sprintf("drive %s is %q: %+v", name, reason, xd.Status)
	}
}

// WorkstationReady waits for the Workstation's Ready to be True.
func (h *Harness) WorkstationReady(name string) func() (bool, string) {
	return func() (bool, string) {
		ws := h.Workstation(name)
		status, reason := v1alpha1.ReadyReason(ws.Status.Conditions)
		return status == metav1.ConditionTrue, fmt.Sprintf("workstation %s Ready=%s/%s: %v", name, status, reason, ws.Status.Conditions)
	}
}

// Condition returns the condition of type t, or a zero condition (Status "") when absent.
func Condition(conds []metav1.Condition, t string) metav1.Condition {
	if c := meta.FindStatusCondition(conds, t); c != nil {
		return *c
	}
	return metav1.Condition{Type: t}
}

// ReadyReason is v1alpha1.ReadyReason, the one implementation, kept under
// this name for the tests that call it here; new code calls v1alpha1's.
var ReadyReason = v1alpha1.ReadyReason
