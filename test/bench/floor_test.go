package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/controller/common"
	"github.com/xdrive-io/xdrive/test/harness"
)

// BenchmarkScaleFloor measures what BenchmarkScaleFake's fleet costs the API
// server with no operator at all: the benchmark itself makes the fewest
// writes any operator of these objects must make (create each Workstation
// and XDrive, put a finalizer on each, write each status once, create each
// Workstation's key Secret), 32 at a time. Its time is the floor under
// BenchmarkScaleFake's on this machine: the API server and etcd share its
// cores with everything else.
func BenchmarkScaleFloor(b *testing.B) {
	objects := count("XDRIVE_BENCH_OBJECTS", 1000)
	h := harness.New(b, harness.Config{Env: harness.Env(b)})
	serverCPU := serverCPUSeconds()
	began := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	errs := make(chan error, objects)
	for i := range objects / 2 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := minimalWrites(h, i); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	took := time.Since(began)
	used := serverCPUSeconds() - serverCPU
	b.ReportMetric(took.Seconds(), "floor-s")
	b.ReportMetric(used, "apiserver-etcd-cpu-s")
	b.Logf("%d objects' minimal writes (7 per pair) took %s; the API server and etcd used %.1f s of CPU (load %.1f)",
		objects, took, used, loadAverage())
}

// minimalWrites makes pair i's fewest writes: 2 creates, 2 finalizers, 2
// status writes and a Secret.
func minimalWrites(h *harness.Harness, i int) error {
	ctx := context.Background()
	c := h.Client
	drive := h.NewDrive(fmt.Sprintf("d-%04d", i), 10)
	ws := h.NewWorkstation(fmt.Sprintf("ws-%04d", i), drive.Name, []string{"t3.large"}, "us-east-1a", "us-east-1b", "us-east-1c")
	for _, o := range []client.Object{drive, ws} {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("create %s: %w", o.GetName(), err)
		}
		controllerutil.AddFinalizer(o, common.Finalizer)
		if err := c.Update(ctx, o); err != nil {
			return fmt.Errorf("finalizer on %s: %w", o.GetName(), err)
		}
	}
	ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", Message: "floor", LastTransitionTime: metav1.Now()}
	drive.Status.Phase = v1alpha1.XDrivePhaseAttached
	drive.Status.Conditions = []metav1.Condition{ready}
	ws.Status.Phase = v1alpha1.WorkstationPhaseRunning
	ws.Status.Conditions = []metav1.Condition{ready}
	for _, o := range []client.Object{drive, ws} {
		if err := c.Status().Update(ctx, o); err != nil {
			return fmt.Errorf("status of %s: %w", o.GetName(), err)
		}
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ws.Name + "-ssh", Namespace: ws.Namespace},
		Data: map[string][]byte{"key": make([]byte, 400)}}
	if err := c.Create(ctx, secret); err != nil {
		return fmt.Errorf("secret of %s: %w", ws.Name, err)
	}
	return nil
}
