package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/interruption"
	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/harness"
	"github.com/xdrive-io/xdrive/test/moto"
)

const (
	notesFile = "notes.txt"
	// waitTimeout bounds each wait for the operator; the whole demo has its own timeout.
	waitTimeout = 3 * time.Minute
	// vmWaitTimeout is waitTimeout with VMs as instances: a boot under
	// software emulation (TCG) takes 4-8 minutes on a loaded 2-core machine,
	// and the operator's status calls back off while sshd is not up yet.
	vmWaitTimeout = 25 * time.Minute
)

// scenario walks one XDrive and one spot Workstation through their lifecycle.
type scenario struct {
	s  *setup
	st *harness.Stack // the operator and moto
	// inst plays the instances: simulated, or real VMs (vm).
	inst instanceSide
	vm   bool
	out  *printer
	c    client.Client
	// startView starts printing the tables and Events.
	startView func()

	drive, ws string
	mount     string
	// class is the WorkstationClass the Workstation uses; the demo creates it and deletes it at the end.
	class *v1alpha1.WorkstationClass
	notes []string
	// changes are files written into the first container, which every later one must see
	changes  []string
	specHash string
	// what each step left behind, for the next steps' checks
	firstVolume, stopSnapshot, secondInstance string
}

// result is what the summary reports.
type result struct {
	snapshots, instances                      int
	leftVolumes, leftInstances, leftSnapshots int
	leftObjects, leftStandIns                 int
	problems                                  []string
}

func (r result) ok() bool { return len(r.problems) == 0 }

func (r result) line() string {
	verdict := "OK"
	if !r.ok() {
		verdict = "FAIL"
	}
	return fmt.Sprintf("demo: %s snapshots=%d instances=%d leftover_volumes=%d leftover_instances=%d leftover_snapshots=%d leftover_objects=%d",
		verdict, r.snapshots, r.instances, r.leftVolumes, r.leftInstances, r.leftSnapshots, r.leftObjects)
}

func (sc *scenario) run(ctx context.Context) (result, error) {
	xd, ws, err := sc.objects()
	if err != nil {
		return result{}, err
	}
	sc.drive, sc.ws, sc.mount = xd.Name, ws.Name, ws.Spec.MountPath
	if vs, ok := sc.inst.(*vmSide); ok {
		vs.ws = ws.Name
	}
	if sc.mount == "" {
		sc.mount = "/v1"
	}
	if err := sc.s.setSpotPrices(ctx, ws.Spec.InstanceTypes, !sc.vm); err != nil {
		return result{}, fmt.Errorf("setting spot prices: %w", err)
	}
	sc.startView()
	steps := []func(context.Context, *v1alpha1.XDrive, *v1alpha1.Workstation) error{
		sc.apply, sc.access, sc.stop, sc.startElsewhere, sc.interrupt, sc.idleStop, sc.moveRegion, sc.deleteAll,
	}
	if sc.vm {
		// Without the idle auto-stop: a VM cannot fake a login session, its
		// signals are checked on a real VM by test/instancevm's
		// TestFirstUseXFS, and here it would cost a fourth boot. Without
		// the move to another region: the VM fleet follows one region.
		steps = []func(context.Context, *v1alpha1.XDrive, *v1alpha1.Workstation) error{
			sc.apply, sc.access, sc.stop, sc.startElsewhere, sc.interrupt, sc.deleteAll,
		}
	}
	for _, step := range steps {
		if err := step(ctx, xd, ws); err != nil {
			return result{}, err
		}
	}
	return sc.summary(ctx)
}

// objects loads the XDrive and the spot Workstation from config/samples, or builds them.
func (sc *scenario) objects() (*v1alpha1.XDrive, *v1alpha1.Workstation, error) {
	xd, ws := &v1alpha1.XDrive{}, &v1alpha1.Workstation{}
	dir := filepath.Join(testenv.RepoRoot(), "config", "samples")
	xdPath, wsPath := filepath.Join(dir, "xdrive_v1alpha1_xdrive.yaml"), filepath.Join(dir, "xdrive_v1alpha1_workstation.yaml")
	errX := readYAML(xdPath, xd)
	errW := readYAML(wsPath, ws)
	if errX == nil && errW == nil && ws.Spec.DriveRef.Name == xd.Name && ws.Spec.CapacityType != v1alpha1.CapacityTypeOnDemand && len(ws.Spec.InstanceTypes) > 0 {
		sc.out.Progress("using %s and %s", rel(xdPath), rel(wsPath))
	} else {
		sc.out.Progress("config/samples has no usable XDrive + spot Workstation pair (%v, %v); using built-in objects", errX, errW)
		xd = &v1alpha1.XDrive{ObjectMeta: metav1.ObjectMeta{Name: "home"}, Spec: v1alpha1.XDriveSpec{SizeGiB: 100, VolumeType: "gp3"}}
		ws = &v1alpha1.Workstation{ObjectMeta: metav1.ObjectMeta{Name: "dev"}, Spec: v1alpha1.WorkstationSpec{
			DriveRef: v1alpha1.DriveReference{Name: "home"}, InstanceTypes: []string{"t3.large", "m7i.large", "m6i.large"},
			CapacityType: v1alpha1.CapacityTypeSpot, MaxSpotPrice: "0.05", MountPath: "/v1",
		}}
	}
	sc.class = sampleClass(filepath.Join(dir, "xdrive_v1alpha1_workstationclass.yaml"), ws.Spec.ClassName)
	if sc.class == nil {
		sc.out.Progress("config/samples has no WorkstationClass %q; using a built-in default class", ws.Spec.ClassName)
		sc.class = &v1alpha1.WorkstationClass{
			ObjectMeta: metav1.ObjectMeta{Name: "standard", Annotations: map[string]string{v1alpha1.DefaultClassAnnotation: "true"}},
			Spec:       v1alpha1.WorkstationClassSpec{NamespaceSelector: &metav1.LabelSelector{}, InstanceTypes: ws.Spec.InstanceTypes},
		}
		ws.Spec.ClassName = sc.class.Name
	}
	if !sc.vm {
		sc.withRegions()
	}
	xd.Namespace, ws.Namespace = namespace, namespace
	xd.Spec.DeletionPolicy = v1alpha1.DeletionPolicyDelete
	ws.Spec.AvailabilityZones = nil
	ws.Spec.State = v1alpha1.WorkstationStateRunning
	withAccess(ws)
	if len(ws.Spec.Containers) == 0 {
		ws.Spec.Containers = []v1alpha1.Container{{Name: "shell", Image: "ubuntu:24.04", Command: []string{"sleep", "infinity"}}}
	}
	if sc.vm {
		// The VMs reach no registry: their image carries a busybox image,
		// which Docker imports as it starts (test/instancevm). A small
		// drive: every byte of it is a file here.
		ws.Spec.Containers = []v1alpha1.Container{{Name: "shell", Image: "xdrive.test/busybox:1",
			Command: []string{"sh", "-c", `trap "exit 0" TERM; while :; do sleep 1; done`}}}
		xd.Spec.SizeGiB = 4
		sc.out.Note("VM instances: container %s runs xdrive.test/busybox:1 (in the VM's image; no registry), and XDrive %s is %d GiB", ws.Spec.Containers[0].Name, xd.Name, xd.Spec.SizeGiB)
	}
	// A checkpoint inside the notice: the hook runs before the container stops (step d shows it).
	ws.Spec.Containers[0].PreStop = &v1alpha1.PreStopHook{Exec: []string{"touch", sc.checkpointPath()}, TimeoutSeconds: 10}
	sc.out.Note("demo changes: XDrive %s deletionPolicy=Delete (so step e removes its snapshots); Workstation %s gets container %q to show its changes kept across moves and a spec change, and its preStop hook %q",
		xd.Name, ws.Name, ws.Spec.Containers[0].Name, strings.Join(ws.Spec.Containers[0].PreStop.Exec, " "))
	return xd, ws, nil
}

// sampleClass reads the class named name (the default one if name is empty) from a file of classes.
func sampleClass(path, name string) *v1alpha1.WorkstationClass {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		c := &v1alpha1.WorkstationClass{}
		if yaml.UnmarshalStrict([]byte(doc), c) != nil {
			continue
		}
		if c.Name == name || name == "" && c.Annotations[v1alpha1.DefaultClassAnnotation] == "true" {
			return c
		}
	}
	return nil
}

func readYAML(path string, obj any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return yaml.UnmarshalStrict(b, obj)
}

func rel(path string) string {
	if r, err := filepath.Rel(testenv.RepoRoot(), path); err == nil {
		return r
	}
	return path
}

// a. apply: the drive is created blank on the first instance.
func (sc *scenario) apply(ctx context.Context, xd *v1alpha1.XDrive, ws *v1alpha1.Workstation) error {
	sc.out.Step("a", fmt.Sprintf("apply WorkstationClass %s, XDrive %s and spot Workstation %s", sc.class.Name, xd.Name, ws.Name))
	start := time.Now()
	sc.out.Progress("WorkstationClass %s: types %s, capacity %s, spot at most $%s/h, drives up to %d GiB",
		sc.class.Name, strings.Join(sc.class.Spec.InstanceTypes, "|"), orDash(fmt.Sprint(sc.class.Spec.CapacityTypes)),
		orDash(sc.class.Spec.MaxSpotPricePerHour), sc.class.Spec.MaxDriveSizeGiB)
	if err := sc.c.Create(ctx, sc.class.DeepCopy()); err != nil {
		return fmt.Errorf("creating WorkstationClass: %w", err)
	}
	sc.out.Progress("XDrive %s: %d GiB %s, deletionPolicy %s", xd.Name, xd.Spec.SizeGiB, orDash(string(xd.Spec.VolumeType)), xd.Spec.DeletionPolicy)
	sc.out.Progress("Workstation %s: %s spot in any zone, max $%s/h, drive at %s", ws.Name, strings.Join(ws.Spec.InstanceTypes, "|"), orDash(ws.Spec.MaxSpotPrice), sc.mount)
	if err := sc.c.Create(ctx, xd.DeepCopy()); err != nil {
		return fmt.Errorf("creating XDrive: %w", err)
	}
	if err := sc.c.Create(ctx, ws.DeepCopy()); err != nil {
		return fmt.Errorf("creating Workstation: %w", err)
	}
	w, d, err := sc.waitReady(ctx, "")
	if err != nil {
		return err
	}
	if w.Status.Class == nil || w.Status.Class.Name != sc.class.Name {
		return fmt.Errorf("first launch: status.class %+v, want class %s", w.Status.Class, sc.class.Name)
	}
	if w.Status.AvailabilityZone != "us-east-1a" || d.Status.RestoreSnapshotID != "" {
		return fmt.Errorf("first launch: zone %s (want the cheapest, us-east-1a), restored from %q (want blank)", w.Status.AvailabilityZone, d.Status.RestoreSnapshotID)
	}
	sc.firstVolume = d.Status.VolumeID
	if err := sc.writeNote(ctx, w); err != nil {
		return err
	}
	if err := sc.changeContainer(ctx, w); err != nil {
		return err
	}
	sc.out.Done("%s in %s: %s is Ready on %s (%s %s in %s at $%s/h); volume %s was created blank and formatted by the bootstrap",
		"a", since(start), ws.Name, w.Status.InstanceID, w.Status.InstanceType, strings.ToLower(string(w.Status.CapacityType)), w.Status.AvailabilityZone, w.Status.SpotPrice, d.Status.VolumeID)
	return nil
}

// b. stop: the drive is flushed, snapshotted and its volume deleted.
func (sc *scenario) stop(ctx context.Context, _ *v1alpha1.XDrive, _ *v1alpha1.Workstation) error {
	sc.out.Step("b", "stop the Workstation (spec.state: Stopped)")
	start := time.Now()
	w0, _, err := sc.get(ctx)
	if err != nil {
		return err
	}
	first := w0.Status.InstanceID
	if err := sc.updateWS(ctx, func(w *v1alpha1.Workstation) { w.Spec.State = v1alpha1.WorkstationStateStopped }); err != nil {
		return err
	}
	var d *v1alpha1.XDrive
	err = sc.waitFor(ctx, "the drive Archived and the Workstation Stopped", func() (bool, string, error) {
		w, x, err := sc.get(ctx)
		if err != nil {
			return false, "", err
		}
		d = x
		_, wr := v1alpha1.ReadyReason(w.Status.Conditions)
		live, err := sc.liveInstances(ctx)
		if err != nil {
			return false, "", err
		}
		return sc.driveReason(x) == v1alpha1.ReasonArchived && x.Status.VolumeID == "" && x.Status.LatestSnapshotID != "" &&
				wr == v1alpha1.ReasonStopped && w.Status.InstanceID == "" && len(live) == 0,
			fmt.Sprintf("drive %s (volume %q), workstation %s, live instances %v", sc.driveReason(x), x.Status.VolumeID, wr, live), nil
	})
	if err != nil {
		return err
	}
	sc.stopSnapshot = d.Status.LatestSnapshotID
	if _, found, err := sc.st.Volume(ctx, sc.firstVolume); err != nil || found {
		return fmt.Errorf("volume %s still exists after the drive was archived (%w)", sc.firstVolume, err)
	}
	consistency, err := sc.consistency(ctx, sc.stopSnapshot, first)
	if err != nil {
		return err
	}
	sc.out.Done("b in %s: snapshot %s completed (%s), volume %s deleted, drive Archived; no instance runs",
		since(start), sc.stopSnapshot, consistency, sc.firstVolume)
	return nil
}

// c. start again in another zone: the drive is restored from the snapshot there.
func (sc *scenario) startElsewhere(ctx context.Context, _ *v1alpha1.XDrive, _ *v1alpha1.Workstation) error {
	zones := []string{"us-east-1b", "us-east-1c"}
	sc.out.Step("c", "start again, away from us-east-1a (spec.state: Running, spec.availabilityZones: "+strings.Join(zones, ", ")+")")
	sc.out.Note("(the operator caches spot prices for 5 minutes, so the demo moves the zone with availabilityZones rather than a price change)")
	start := time.Now()
	if err := sc.updateWS(ctx, func(w *v1alpha1.Workstation) {
		w.Spec.State = v1alpha1.WorkstationStateRunning
		w.Spec.AvailabilityZones = zones
	}); err != nil {
		return err
	}
	w, d, err := sc.waitReady(ctx, "")
	if err != nil {
		return err
	}
	vol, err := sc.volume(ctx, d.Status.VolumeID)
	if err != nil {
		return err
	}
	if w.Status.AvailabilityZone != "us-east-1b" || aws.ToString(vol.AvailabilityZone) != "us-east-1b" || aws.ToString(vol.SnapshotId) != sc.stopSnapshot {
		return fmt.Errorf("restart: instance in %s, volume %s in %s from %q; want us-east-1b from %s",
			w.Status.AvailabilityZone, d.Status.VolumeID, aws.ToString(vol.AvailabilityZone), aws.ToString(vol.SnapshotId), sc.stopSnapshot)
	}
	sc.secondInstance = w.Status.InstanceID
	if err := sc.checkNotes(ctx, w); err != nil {
		return err
	}
	if err := sc.checkContainer(ctx, w, false); err != nil {
		return err
	}
	if err := sc.writeNote(ctx, w); err != nil {
		return err
	}
	if err := sc.changeContainer(ctx, w); err != nil {
		return err
	}
	// A spec change takes effect at the next launch, which carries the container's changes over.
	if err := sc.updateWS(ctx, func(w *v1alpha1.Workstation) {
		c := &w.Spec.Containers[0]
		c.Env = append(c.Env, corev1.EnvVar{Name: "XDRIVE_DEMO", Value: "spec-changed"})
	}); err != nil {
		return err
	}
	sc.out.Progress("spec change: container %s gets env XDRIVE_DEMO=spec-changed; the next launch recreates it, carrying its writable layer over",
		w.Spec.Containers[0].Name)
	sc.out.Done("c in %s: %s is Ready on %s in %s; volume %s was restored there from %s",
		since(start), sc.ws, w.Status.InstanceID, w.Status.AvailabilityZone, d.Status.VolumeID, sc.stopSnapshot)
	return nil
}

// d. a spot interruption: flushed, snapshotted, and relaunched in the same
// zone on the same volume, reattached while the snapshot is still pending.
func (sc *scenario) interrupt(ctx context.Context, _ *v1alpha1.XDrive, _ *v1alpha1.Workstation) error {
	sc.out.Step("d", "simulate a spot interruption of "+sc.secondInstance)
	start := time.Now()
	_, d0, err := sc.get(ctx)
	if err != nil {
		return err
	}
	sc.st.Proxy.HoldSnapshots(true)
	defer sc.st.Proxy.HoldSnapshots(false)
	sc.out.Progress("the fault proxy holds every new snapshot pending until the relaunch is Ready")
	detail := fmt.Sprintf(`{"instance-id":%q,"instance-action":"terminate"}`, sc.secondInstance)
	arn := fmt.Sprintf("arn:aws:ec2:%s:%s:instance/%s", moto.Region, sc.st.Account, sc.secondInstance)
	res, err := sc.s.events.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		Source: aws.String(interruption.SourceEC2), DetailType: aws.String(interruption.DetailTypeSpotInterruption),
		Detail: aws.String(detail), Resources: []string{arn},
	}}})
	if err != nil || res.FailedEntryCount != 0 {
		return fmt.Errorf("publishing the interruption event: %w", err)
	}
	if err := sc.inst.Notice(sc.secondInstance); err != nil {
		return err
	}
	sc.out.Progress("published through moto's EventBridge (-> SQS queue %s): source %s, detail-type %q, detail %s",
		queueName, interruption.SourceEC2, interruption.DetailTypeSpotInterruption, detail)
	sc.out.Progress("and the instance's IMDS now answers spot/instance-action with a terminate action, as EC2's does")
	w, d, err := sc.waitReady(ctx, sc.secondInstance)
	if err != nil {
		return err
	}
	if w.Status.Interruptions != 1 {
		return fmt.Errorf("interruptions = %d, want 1", w.Status.Interruptions)
	}
	ts := d.Status.TrailingSnapshot
	if d.Status.VolumeID != d0.Status.VolumeID || w.Status.AvailabilityZone != "us-east-1b" || ts == nil {
		return fmt.Errorf("relaunch in %s on volume %s (was %s), trailing snapshot %+v: want the same volume reattached in us-east-1b, its snapshot pending",
			w.Status.AvailabilityZone, d.Status.VolumeID, d0.Status.VolumeID, ts)
	}
	if err := sc.checkpointSaved(w); err != nil {
		return err
	}
	from := ts.ID // the operator followed it as pending when it reattached the volume
	sc.out.Progress("Ready on volume %s, reattached in %s, while snapshot %s of the interruption is still pending: no restore, no wait",
		d.Status.VolumeID, w.Status.AvailabilityZone, from)
	consistency, err := sc.consistency(ctx, from, sc.secondInstance)
	if err != nil {
		return err
	}
	if err := sc.checkNotes(ctx, w); err != nil {
		return err
	}
	if err := sc.checkContainer(ctx, w, true); err != nil {
		return err
	}
	var avoided []string
	for _, a := range w.Status.AvoidOfferings {
		avoided = append(avoided, a.Offering+" ("+a.Reason+")")
	}
	sc.out.Done("d in %s: snapshot %s (%s) taken, relaunched as %s (%s) in %s on the same volume %s, reattached; interruptions=%d, launches=%d; avoiding %s",
		since(start), from, consistency, w.Status.InstanceID, w.Status.InstanceType, w.Status.AvailabilityZone, d.Status.VolumeID,
		w.Status.Interruptions, w.Status.Launches, strings.Join(avoided, ", "))
	return nil
}

// e. delete both: the last volume is snapshotted, then every snapshot goes with the drive.
func (sc *scenario) deleteAll(ctx context.Context, _ *v1alpha1.XDrive, _ *v1alpha1.Workstation) error {
	sc.out.Step("e", "delete the Workstation and the XDrive (deletionPolicy: Delete)")
	start := time.Now()
	for _, obj := range []client.Object{
		&v1alpha1.Workstation{ObjectMeta: metav1.ObjectMeta{Name: sc.ws}},
		&v1alpha1.XDrive{ObjectMeta: metav1.ObjectMeta{Name: sc.drive}},
	} {
		if err := sc.st.Delete(ctx, obj); err != nil {
			return err
		}
	}
	err := sc.waitFor(ctx, "both objects gone", func() (bool, string, error) {
		wsLeft, err := sc.st.Exists(ctx, &v1alpha1.Workstation{}, sc.ws)
		if err != nil {
			return false, "", err
		}
		xdLeft, err := sc.st.Exists(ctx, &v1alpha1.XDrive{}, sc.drive)
		return !wsLeft && !xdLeft, fmt.Sprintf("Workstation left: %v, XDrive left: %v", wsLeft, xdLeft), err
	})
	if err != nil {
		return err
	}
	// envtest runs no garbage collector; in a cluster the owner reference removes the SSH Secret.
	var secrets corev1.SecretList
	if err := sc.c.List(ctx, &secrets, client.InNamespace(namespace)); err != nil {
		return err
	}
	for _, secret := range secrets.Items {
		if !slices.ContainsFunc(secret.OwnerReferences, func(o metav1.OwnerReference) bool {
			return o.Kind == "Workstation" && o.Name == sc.ws
		}) {
			continue
		}
		if err := sc.st.Delete(ctx, &secret); err != nil {
			return err
		}
		sc.out.Note("deleted Secret %s as the garbage collector would (envtest has none; the Workstation owns it)", secret.Name)
	}
	if err := sc.c.Delete(ctx, &v1alpha1.WorkstationClass{ObjectMeta: metav1.ObjectMeta{Name: sc.class.Name}}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting WorkstationClass %s: %w", sc.class.Name, err)
	}
	sc.out.Done("e in %s: Workstation and XDrive are gone, and the WorkstationClass", since(start))
	return nil
}

// summary counts what happened and checks that nothing is left.
func (sc *scenario) summary(ctx context.Context) (result, error) {
	sc.out.Step("summary", "what happened, and what is left")
	var r result
	r.snapshots = len(sc.st.Proxy.CreatedSnapshots())
	launched := sc.inst.Launched()
	r.instances = len(launched)
	sc.out.Progress("instances launched: %d (%s)", r.instances, strings.Join(launched, ", "))
	sc.out.Progress("snapshots taken:    %d (%s)", r.snapshots, strings.Join(sc.st.Proxy.CreatedSnapshots(), ", "))
	var status, release int
	var counted bool
	for _, id := range launched {
		if h, ok := sc.inst.Instance(id); ok {
			s, rl, ok := h.SSHCommands()
			status, release, counted = status+s, release+rl, ok
		}
	}
	if counted {
		sc.out.Progress("SSH commands run by the operator on the instances: %d xdrive-ctl status, %d xdrive-ctl release", status, release)
	}

	counts := sc.st.Proxy.Counts()
	actions := make([]string, 0, len(counts))
	total := 0
	for a, n := range counts {
		actions = append(actions, a)
		total += n
	}
	sort.Slice(actions, func(i, j int) bool {
		if counts[actions[i]] != counts[actions[j]] {
			return counts[actions[i]] > counts[actions[j]]
		}
		return actions[i] < actions[j]
	})
	sc.out.Progress("AWS API calls made by the operator (counted by the fault proxy): %d", total)
	var rows [][]string
	for _, a := range actions {
		rows = append(rows, []string{"  " + a, fmt.Sprint(counts[a])})
	}
	sc.out.Raw("%s", render([]string{"  ACTION", "CALLS"}, rows))

	// What is left, straight from moto and the API server.
	instances, err := sc.st.AllInstances(ctx)
	if err != nil {
		return r, err
	}
	for _, in := range instances {
		if in.State == nil || in.State.Name != ec2types.InstanceStateNameTerminated {
			r.leftInstances++
			r.problems = append(r.problems, "instance "+aws.ToString(in.InstanceId)+" is not terminated")
		}
	}
	vols, err := sc.st.Volumes(ctx)
	if err != nil {
		return r, err
	}
	for _, v := range vols {
		r.leftVolumes++
		r.problems = append(r.problems, fmt.Sprintf("volume %s (%s) is left", aws.ToString(v.VolumeId), v.State))
	}
	snaps, err := sc.st.Snapshots(ctx)
	if err != nil {
		return r, err
	}
	for _, s := range snaps {
		r.leftSnapshots++
		r.problems = append(r.problems, "snapshot "+aws.ToString(s.SnapshotId)+" is left")
	}
	groups, err := sc.leftGroups(ctx)
	if err != nil {
		return r, err
	}
	if len(groups) > 0 {
		r.problems = append(r.problems, "security groups are left: "+strings.Join(groups, ", "))
	}
	if !sc.vm {
		west, err := sc.leftInOtherRegion(ctx)
		if err != nil {
			return r, err
		}
		for _, what := range west {
			switch kind, _, _ := strings.Cut(what, " "); kind {
			case "instance":
				r.leftInstances++
			case "volume":
				r.leftVolumes++
			case "snapshot":
				r.leftSnapshots++
			}
			r.problems = append(r.problems, what+" is left in "+otherRegion)
		}
		sc.out.Progress("left in %s: %d instances not terminated, volumes, snapshots or security groups of the cluster", otherRegion, len(west))
	}
	var wsList v1alpha1.WorkstationList
	var xdList v1alpha1.XDriveList
	var secrets corev1.SecretList
	for _, l := range []client.ObjectList{&wsList, &xdList, &secrets} {
		if err := sc.c.List(ctx, l, client.InNamespace(namespace)); err != nil {
			return r, err
		}
	}
	r.leftObjects = len(wsList.Items) + len(xdList.Items) + len(secrets.Items)
	if r.leftObjects > 0 {
		r.problems = append(r.problems, fmt.Sprintf("%d Workstations, %d XDrives and %d Secrets are left in namespace %s",
			len(wsList.Items), len(xdList.Items), len(secrets.Items), namespace))
	}
	if running := sc.inst.Running(); len(running) > 0 {
		r.leftStandIns = len(running)
		r.problems = append(r.problems, sc.standIns()+" still running: "+strings.Join(running, ", "))
	}
	switch {
	case sc.vm && (r.snapshots != 3 || r.instances != 3):
		r.problems = append(r.problems, fmt.Sprintf("expected 3 snapshots (stop, interruption, delete) and 3 instances, got %d and %d", r.snapshots, r.instances))
	case !sc.vm && (r.snapshots != 6 || r.instances != 5):
		r.problems = append(r.problems, fmt.Sprintf("expected 6 snapshots (stop, interruption, idle stop, stop before the move, its copy in %s, delete) and 5 instances, got %d and %d",
			otherRegion, r.snapshots, r.instances))
	}
	sc.out.Progress("left in moto (%s and %s): %d volumes, %d instances not terminated, %d snapshots; in the API server: %d objects; %s running: %d",
		moto.Region, sc.otherRegions(), r.leftVolumes, r.leftInstances, r.leftSnapshots, r.leftObjects, sc.standIns(), r.leftStandIns)
	sc.out.Progress("%s%s as the last instance left it, after restores from snapshots, a reattach and a move to %s:", sc.mount+"/", notesFile, sc.otherRegions())
	for _, n := range sc.notes {
		sc.out.Raw("    %s\n", n)
	}
	for _, p := range r.problems {
		sc.out.Fail("%s", p)
	}
	return r, nil
}

// waitReady waits for the Workstation to be Ready on an instance other than
// notOn, with its drive attached there.
func (sc *scenario) waitReady(ctx context.Context, notOn string) (*v1alpha1.Workstation, *v1alpha1.XDrive, error) {
	var w *v1alpha1.Workstation
	var d *v1alpha1.XDrive
	err := sc.waitFor(ctx, "the Workstation Ready with its drive attached", func() (bool, string, error) {
		var err error
		if w, d, err = sc.get(ctx); err != nil {
			return false, "", err
		}
		status, wr := v1alpha1.ReadyReason(w.Status.Conditions)
		return status == metav1.ConditionTrue && w.Status.InstanceID != notOn && d.Status.AttachedTo == w.Status.InstanceID &&
				sc.driveReason(d) == v1alpha1.ReasonAttached,
			fmt.Sprintf("workstation %s on %q, drive %s", wr, w.Status.InstanceID, sc.driveReason(d)), nil
	})
	return w, d, err
}

// waitFor polls cond until it holds, an error occurs (a simulated instance
// failing to boot is one) or ctx ends.
func (sc *scenario) waitFor(ctx context.Context, what string, cond func() (bool, string, error)) error {
	sc.out.Progress("waiting for %s", what)
	timeout := waitTimeout
	if sc.vm {
		timeout = vmWaitTimeout
	}
	return harness.Poll(ctx, 250*time.Millisecond, timeout, what, func() (bool, string, error) {
		if err := sc.inst.Failed(); err != nil {
			return false, "", err
		}
		return cond()
	})
}

// get reads the Workstation and its drive.
func (sc *scenario) get(ctx context.Context) (*v1alpha1.Workstation, *v1alpha1.XDrive, error) {
	w, err := sc.st.Workstation(ctx, sc.ws)
	if err != nil {
		return nil, nil, err
	}
	d, err := sc.st.Drive(ctx, sc.drive)
	return w, d, err
}

// driveReason is the drive's state (Archived, Restoring, Attached, Snapshotting, ...), from
// VolumeReady: Ready stays Unknown until a first snapshot has made SnapshotsHealthy True.
func (sc *scenario) driveReason(d *v1alpha1.XDrive) string {
	if c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionVolumeReady); c != nil && c.Status != metav1.ConditionUnknown {
		return c.Reason
	}
	return ""
}

func (sc *scenario) updateWS(ctx context.Context, change func(*v1alpha1.Workstation)) error {
	return sc.st.UpdateWorkstation(ctx, sc.ws, change)
}

// writeNote appends a line to a file on the drive, as work done on the instance.
func (sc *scenario) writeNote(ctx context.Context, w *v1alpha1.Workstation) error {
	h, ok := sc.inst.Instance(w.Status.InstanceID)
	if !ok {
		return fmt.Errorf("no simulated instance %s", w.Status.InstanceID)
	}
	line := fmt.Sprintf("written on %s (%s, %s) at %s", w.Status.InstanceID, w.Status.InstanceType, w.Status.AvailabilityZone, time.Now().UTC().Format(time.TimeOnly))
	if err := h.AppendDrive(ctx, sc.mount, notesFile, line); err != nil {
		return err
	}
	sc.notes = append(sc.notes, line)
	sc.out.Progress("the user writes %s/%s on %s: %q", sc.mount, notesFile, w.Status.InstanceID, line)
	return nil
}

// checkNotes reads the file back on the new instance: it must hold every line written so far.
func (sc *scenario) checkNotes(ctx context.Context, w *v1alpha1.Workstation) error {
	h, ok := sc.inst.Instance(w.Status.InstanceID)
	if !ok {
		return fmt.Errorf("no simulated instance %s", w.Status.InstanceID)
	}
	got, err := h.ReadDrive(ctx, sc.mount, notesFile)
	if err != nil {
		return fmt.Errorf("reading %s on %s: %w", notesFile, w.Status.InstanceID, err)
	}
	want := strings.Join(sc.notes, "\n") + "\n"
	if got != want {
		return fmt.Errorf("%s on %s = %q, want %q", notesFile, w.Status.InstanceID, got, want)
	}
	sc.out.Progress("%s/%s on %s holds the %d line(s) written on earlier instances: the drive came along", sc.mount, notesFile, w.Status.InstanceID, len(sc.notes))
	return nil
}

// changeContainer writes a file in the container, as a `pip install` would.
func (sc *scenario) changeContainer(ctx context.Context, w *v1alpha1.Workstation) error {
	h, ok := sc.inst.Instance(w.Status.InstanceID)
	if !ok {
		return fmt.Errorf("no simulated instance %s", w.Status.InstanceID)
	}
	name, path := w.Spec.Containers[0].Name, sc.changeDir()+"/installed-on-"+w.Status.InstanceID
	if _, err := h.Docker(ctx, "exec", name, "touch", path); err != nil {
		return err
	}
	sc.changes = append(sc.changes, path)
	hash, err := h.Docker(ctx, "inspect", "-f", `{{index .Config.Labels "xdrive.io/spec-hash"}}`, name)
	sc.specHash = strings.TrimSpace(hash)
	sc.out.Progress("the user changes container %s on %s: docker exec %s touch %s", name, w.Status.InstanceID, name, path)
	return err
}

// checkpointPath is the file the container's preStop hook writes.
func (sc *scenario) checkpointPath() string { return sc.changeDir() + "/checkpoint-at-notice" }

// checkpointSaved shows the preStop hook's run inside the spot notice of
// the second instance; checkContainer then finds its file on the relaunch.
func (sc *scenario) checkpointSaved(w *v1alpha1.Workstation) error {
	ps := w.Status.PreStop
	if ps == nil || ps.InstanceID != sc.secondInstance || len(ps.Hooks) != 1 || ps.Hooks[0].Outcome != v1alpha1.PreStopRan {
		return fmt.Errorf("status.preStop = %+v, want the hook run on %s", ps, sc.secondInstance)
	}
	h := ps.Hooks[0]
	sc.out.Progress("inside the spot notice, before its containers stopped and the drive was flushed, %s ran container %s's preStop hook (%s): %s in %ds",
		sc.secondInstance, h.Container, strings.Join(w.Spec.Containers[0].PreStop.Exec, " "), h.Outcome, ptr.Deref(h.DurationSeconds, 0))
	if !slices.Contains(sc.changes, sc.checkpointPath()) {
		sc.changes = append(sc.changes, sc.checkpointPath())
	}
	return nil
}

// standIns names what plays the instances.
func (sc *scenario) standIns() string {
	if sc.vm {
		return "VMs"
	}
	return "simulated instances"
}

// changeDir is where changeContainer writes in the container: busybox's
// rootfs (the VMs' image) has no /root.
func (sc *scenario) changeDir() string {
	if sc.vm {
		return "/tmp"
	}
	return "/root"
}

// checkContainer checks that the container on the new instance sees every
// change made in it on earlier instances, and whether it was recreated.
func (sc *scenario) checkContainer(ctx context.Context, w *v1alpha1.Workstation, specChanged bool) error {
	h, ok := sc.inst.Instance(w.Status.InstanceID)
	if !ok {
		return fmt.Errorf("no simulated instance %s", w.Status.InstanceID)
	}
	name := w.Spec.Containers[0].Name
	for _, path := range sc.changes {
		if _, err := h.Docker(ctx, "exec", name, "test", "-e", path); err != nil {
			return fmt.Errorf("container %s on %s lost the change %s: %w", name, w.Status.InstanceID, path, err)
		}
	}
	hash, err := h.Docker(ctx, "inspect", "-f", `{{index .Config.Labels "xdrive.io/spec-hash"}}`, name)
	if err != nil {
		return err
	}
	if recreated := strings.TrimSpace(hash) != sc.specHash; recreated != specChanged {
		return fmt.Errorf("container %s on %s: spec hash %s, before %s; recreated=%t, want %t", name, w.Status.InstanceID, strings.TrimSpace(hash), sc.specHash, recreated, specChanged)
	}
	how := "the same container, started again"
	if specChanged {
		how = "recreated for the new spec from a commit of the old one"
	}
	sc.out.Progress("container %s on %s sees all %d change(s) made on earlier instances: %s", name, w.Status.InstanceID, len(sc.changes), how)
	return nil
}

func (sc *scenario) liveInstances(ctx context.Context) ([]string, error) {
	all, err := sc.st.AllInstances(ctx)
	return harness.InstanceIDs(harness.Live(all)), err
}

func (sc *scenario) volume(ctx context.Context, id string) (ec2types.Volume, error) {
	v, found, err := sc.st.Volume(ctx, id)
	if err == nil && !found {
		err = fmt.Errorf("volume %s not found", id)
	}
	return v, err
}

func (sc *scenario) snapshotTag(ctx context.Context, id, key string) (string, error) {
	snap, found, err := sc.st.Snapshot(ctx, id)
	if err == nil && !found {
		err = fmt.Errorf("snapshot %s not found", id)
	}
	return cloud.TagMap(snap.Tags)[key], err
}

// consistency returns the snapshot's consistency tag; it is an error when the
// instance released (flushed and unmounted) the drive but the snapshot is not
// tagged flushed.
func (sc *scenario) consistency(ctx context.Context, snapshot, instanceID string) (string, error) {
	c, err := sc.snapshotTag(ctx, snapshot, cloud.TagConsistency)
	if err != nil {
		return "", err
	}
	if h, ok := sc.inst.Instance(instanceID); ok && h.Released() && c != string(v1alpha1.ConsistencyFlushed) {
		return "", fmt.Errorf("%s released the drive (xdrive-ctl release: flushed and unmounted) before %s, yet the operator tagged the snapshot %s=%s",
			instanceID, snapshot, cloud.TagConsistency, c)
	}
	return "consistency " + c, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }
