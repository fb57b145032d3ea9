package common

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/go-logr/logr/funcr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// TestFailureSaysAWSOnlyForAWS: a failed reconcile is reported as AWSError
// only when an AWS call failed, however deep the error is wrapped.
func TestFailureSaysAWSOnlyForAWS(t *testing.T) {
	aws := &smithy.GenericAPIError{Code: "InternalError", Message: "boom", Fault: smithy.FaultServer}
	cases := []struct {
		name   string
		err    error
		reason string
		aws    bool
	}{
		{"an AWS API error", fmt.Errorf("describe volume vol-1 of drive lab/home: %w", aws), v1alpha1.ReasonAWSError, true},
		{"a call the SDK gave up on", &smithy.OperationError{ServiceID: "EC2", OperationName: "DescribeVolumes", Err: errors.New("dial tcp: timeout")},
			v1alpha1.ReasonAWSError, true},
		{"the API server", fmt.Errorf("read XDrive home of Workstation lab/dev: %w", apierrors.NewServiceUnavailable("etcd is down")), v1alpha1.ReasonRetrying, false},
		{"anything else", errors.New("generate an SSH key: no entropy"), v1alpha1.ReasonRetrying, false},
	}
	for _, c := range cases {
		reason, msg := Failure(c.err)
		if reason != c.reason || strings.Contains(msg, "AWS") != c.aws || !strings.Contains(msg, c.err.Error()) {
			t.Errorf("%s: Failure = %q, %q; want reason %s, AWS named %v, the error in the message", c.name, reason, msg, c.reason, c.aws)
		}
	}
}

// TestFinishRequeuesConflictsQuietly: a status write that lost to another
// comes back soon without an error (no failure, no error log); the
// reconcile's own error, and any other write error, still count.
func TestFinishRequeuesConflictsQuietly(t *testing.T) {
	conflict := apierrors.NewConflict(schema.GroupResource{Group: "xdrive.io", Resource: "xdrives"}, "home", errors.New("the object has been modified"))
	denied := apierrors.NewForbidden(schema.GroupResource{Group: "xdrive.io", Resource: "xdrives"}, "home", errors.New("no"))
	failed := errors.New("describe volume vol-1 of drive lab/home: boom")
	cases := []struct {
		name       string
		writeErr   error
		reconcile  error
		wantErr    error
		wantQuiet  bool
		wantInText string
	}{
		{name: "a conflict", writeErr: conflict, wantQuiet: true},
		{name: "a conflict after a failed reconcile", writeErr: conflict, reconcile: failed, wantErr: failed},
		{name: "a refused write", writeErr: denied, wantInText: "write the status of lab/home"},
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		xd := &v1alpha1.XDrive{ObjectMeta: metav1.ObjectMeta{Namespace: "lab", Name: "home"}}
		cl := interceptor.NewClient(fake.NewClientBuilder().WithScheme(scheme).WithObjects(xd).WithStatusSubresource(xd).Build(),
			interceptor.Funcs{SubResourcePatch: func(context.Context, client.Client, string, client.Object, client.Patch, ...client.SubResourcePatchOption) error {
				return c.writeErr
			}})
		before := xd.DeepCopy()
		xd.Status.Phase = v1alpha1.XDrivePhaseArchived
		res, err := Finish(context.Background(), cl, &Writes{}, before, xd, before.Status, xd.Status, &Events{}, false, ctrl.Result{}, c.reconcile)
		switch {
		case c.wantQuiet && (err != nil || res.RequeueAfter <= 0):
			t.Errorf("%s: Finish = %+v, %v; want a quiet requeue", c.name, res, err)
		case c.wantErr != nil && !errors.Is(err, c.wantErr):
			t.Errorf("%s: Finish error = %v; want %v", c.name, err, c.wantErr)
		case c.wantInText != "" && (err == nil || !strings.Contains(err.Error(), c.wantInText)):
			t.Errorf("%s: Finish error = %v; want it to say %q", c.name, err, c.wantInText)
		}
	}
}

// TestDecisionsLoggedOnceAfterTheWrite: each Event and phase change is
// logged once, at info, when the status write succeeded; waits at V(1).
func TestDecisionsLoggedOnceAfterTheWrite(t *testing.T) {
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{Verbosity: 0})
	ev := &Events{Log: log.WithValues("XDrive", "lab/home")}
	ev.PhaseChanged("Attached", "Snapshotting", "the holder recorded a flushed release of this instance")
	ev.Add(false, "Snapshotting", "Snapshot", "Snapshot %s of %s started", "snap-1", "vol-1")
	ev.Waiting("Snapshotting", "", time.Second)
	if len(lines) != 0 {
		t.Fatalf("logged before the status write: %v", lines)
	}
	ev.Flush()
	ev.Flush()
	if len(lines) != 2 {
		t.Fatalf("logged %d lines, want the phase change and the Event once each (the wait is V(1)): %v", len(lines), lines)
	}
	for _, want := range []string{`"msg"="Phase changed" "XDrive"="lab/home" "from"="Attached" "to"="Snapshotting"`, `"msg"="Snapshot snap-1 of vol-1 started"`} {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, want) }) {
			t.Errorf("no line with %s in %v", want, lines)
		}
	}
}
