package argocd

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

type fixtureCase struct {
	file string
	want Health
}

func runFixtures(t *testing.T, scriptPath string, cases []fixtureCase) {
	t.Helper()
	script := readScript(t, scriptPath)
	for _, tc := range cases {
		t.Run(strings.TrimSuffix(tc.file, filepath.Ext(tc.file)), func(t *testing.T) {
			got, err := runHealth(script, loadObject(t, tc.file))
			if err != nil {
				t.Fatalf("script failed: %v", err)
			}
			if got != tc.want {
				t.Fatalf("health of %s:\n got  %+v\n want %+v", tc.file, got, tc.want)
			}
		})
	}
}

func TestXDriveHealth(t *testing.T) {
	runFixtures(t, xdriveScript, []fixtureCase{
		{"xdrive-no-status.yaml", Health{"Progressing", "Waiting for the xdrive controller to report status"}},
		{"xdrive-stale-generation.yaml", Health{"Progressing", "Waiting for the xdrive controller to observe generation 3"}},
		{"xdrive-no-ready.yaml", Health{"Progressing", "Waiting for the Ready condition"}},
		{"xdrive-archived.yaml", Health{"Healthy", "Archived as snapshot snap-0123456789abcdef0"}},
		{"xdrive-restoring.yaml", Health{"Progressing", "Volume vol-0123456789abcdef0 is being created from snap-0123456789abcdef0 for i-0123456789abcdef0"}},
		{"xdrive-snapshotting.yaml", Health{"Progressing", "Snapshot snap-0fedcba9876543210 of volume vol-0123456789abcdef0 is pending 42%"}},
		{"xdrive-snapshot-failed.yaml", Health{"Degraded", "Snapshot snap-0fedcba9876543210 of volume vol-0123456789abcdef0 failed; the volume is kept and a new snapshot will be taken"}},
		{"xdrive-source-not-found.yaml", Health{"Degraded", "No completed snapshot has the Name tag my-old-drive"}},
		{"xdrive-aws-error.json", Health{"Degraded", "AWS call failed (throttled), retrying: RequestLimitExceeded"}},
		{"xdrive-unlisted-reason.yaml", Health{"Progressing", "SomethingNew"}},
	})
}

func TestWorkstationHealth(t *testing.T) {
	runFixtures(t, workstationPath, []fixtureCase{
		{"ws-no-status.yaml", Health{"Progressing", "Waiting for the xdrive controller to report status"}},
		{"ws-stale-generation.yaml", Health{"Progressing", "Waiting for the xdrive controller to observe generation 4"}},
		{"ws-ready.yaml", Health{"Healthy", "Launched m7i.large (Spot) in us-east-1a as i-0123456789abcdef0"}},
		{"ws-not-preserved.yaml", Health{"Degraded", "Kept with their previous settings, changes not carried over: ide: docker commit failed; kept with its previous settings"}},
		{"ws-stopped.yaml", Health{"Suspended", "The Workstation is stopped; its drive is archived as snapshots"}},
		{"ws-stopped-after-interruption.yaml", Health{"Suspended", "Stopped after a spot interruption (interruptionPolicy=Stop); edit the spec to start again"}},
		{"ws-interrupted.yaml", Health{"Progressing", "Interrupted (SpotInterrupted); the Workstation is relaunched once its drive is snapshotted: spot notice for instance i-0123456789abcdef0 at 2026-01-01T10:00:00Z; the drive is being snapshotted"}},
		{"ws-interrupted-while-ready.yaml", Health{"Progressing", "Interrupted (Rebalancing); the Workstation is relaunched once its drive is snapshotted: rebalance notice for instance i-0123456789abcdef0 at 2026-01-01T10:00:00Z; the drive is being snapshotted"}},
		{"ws-interrupted-stop-policy.yaml", Health{"Progressing", "Interrupted (SpotInterrupted); the Workstation stops once its drive is snapshotted: spot notice for instance i-0123456789abcdef0 at 2026-01-01T10:00:00Z; the drive is being snapshotted"}},
		{"ws-no-capacity.yaml", Health{"Degraded", "No spot capacity for m7i.large, m6i.large in us-east-1a, us-east-1b; retrying"}},
		{"ws-ssh-unreachable.yaml", Health{"Progressing", "Cannot reach i-0123456789abcdef0 over SSH yet: dial tcp 203.0.113.7:22: i/o timeout"}},
		{"ws-crash-consistent.yaml", Health{"Degraded", "The instance did not flush in time; the drive is snapshotted crash-consistent"}},
		{"ws-base.yaml", Health{"Progressing", "Reconciliation has started"}},
	})
}

// withReady returns the fixture with its Ready condition replaced.
func withReady(t *testing.T, file string, status metav1.ConditionStatus, reason, message string) *unstructured.Unstructured {
	t.Helper()
	obj := loadObject(t, file)
	conds, _, err := unstructured.NestedSlice(obj.Object, "status", "conditions")
	if err != nil {
		t.Fatal(err)
	}
	kept := []any{map[string]any{
		"type": v1alpha1.ConditionReady, "status": string(status), "reason": reason, "message": message,
		"observedGeneration": int64(1), "lastTransitionTime": "2026-01-01T10:00:00Z",
	}}
	for _, c := range conds {
		if c.(map[string]any)["type"] != v1alpha1.ConditionReady {
			kept = append(kept, c)
		}
	}
	if err := unstructured.SetNestedSlice(obj.Object, kept, "status", "conditions"); err != nil {
		t.Fatal(err)
	}
	return obj
}

type reasonCase struct {
	status metav1.ConditionStatus
	reason string
	want   string
}

func runReasons(t *testing.T, scriptPath, base string, cases []reasonCase) {
	t.Helper()
	script := readScript(t, scriptPath)
	for _, tc := range cases {
		t.Run(string(tc.status)+"/"+tc.reason, func(t *testing.T) {
			msg := "message for " + tc.reason
			got, err := runHealth(script, withReady(t, base, tc.status, tc.reason, msg))
			if err != nil {
				t.Fatal(err)
			}
			if want := (Health{tc.want, msg}); got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
}

// Every reason the controllers put on Ready, by the API's own constants.
func TestXDriveReadyReasons(t *testing.T) {
	runReasons(t, xdriveScript, "xdrive-no-ready.yaml", []reasonCase{
		{metav1.ConditionTrue, v1alpha1.ReasonArchived, "Healthy"},
		{metav1.ConditionTrue, v1alpha1.ReasonAttached, "Healthy"},
		{metav1.ConditionFalse, v1alpha1.ReasonRestoring, "Progressing"},
		{metav1.ConditionFalse, v1alpha1.ReasonSnapshotting, "Progressing"},
		{metav1.ConditionFalse, v1alpha1.ReasonDeletingVolume, "Progressing"},
		{metav1.ConditionUnknown, v1alpha1.ReasonReconciling, "Progressing"},
		{metav1.ConditionFalse, v1alpha1.ReasonSnapshotFailed, "Degraded"},
		{metav1.ConditionFalse, v1alpha1.ReasonSourceNotFound, "Degraded"},
		{metav1.ConditionFalse, v1alpha1.ReasonForeignSnapshot, "Degraded"},
		{metav1.ConditionFalse, v1alpha1.ReasonAWSError, "Degraded"},
		{metav1.ConditionUnknown, v1alpha1.ReasonAWSError, "Degraded"},
	})
}

func TestWorkstationReadyReasons(t *testing.T) {
	runReasons(t, workstationPath, "ws-base.yaml", []reasonCase{
		{metav1.ConditionTrue, v1alpha1.ReasonReady, "Healthy"},
		{metav1.ConditionFalse, v1alpha1.ReasonStopped, "Suspended"},
		{metav1.ConditionFalse, v1alpha1.ReasonIdleStopped, "Suspended"},
		{metav1.ConditionFalse, v1alpha1.ReasonBudgetExceeded, "Suspended"},
		{metav1.ConditionFalse, v1alpha1.ReasonScheduledStop, "Suspended"},
		{metav1.ConditionFalse, v1alpha1.ReasonLaunching, "Progressing"},
		{metav1.ConditionFalse, v1alpha1.ReasonInstancePending, "Progressing"},
		{metav1.ConditionFalse, v1alpha1.ReasonWaitingForDrive, "Progressing"},
		{metav1.ConditionFalse, v1alpha1.ReasonStopping, "Progressing"},
		{metav1.ConditionUnknown, v1alpha1.ReasonSSHUnreachable, "Progressing"},
		{metav1.ConditionUnknown, v1alpha1.ReasonReconciling, "Progressing"},
		{metav1.ConditionFalse, v1alpha1.ReasonNotMounted, "Progressing"},
		{metav1.ConditionFalse, v1alpha1.ReasonNoCapacity, "Degraded"},
		{metav1.ConditionFalse, v1alpha1.ReasonDriveNotFound, "Degraded"},
		{metav1.ConditionFalse, v1alpha1.ReasonDriveInUse, "Degraded"},
		{metav1.ConditionFalse, v1alpha1.ReasonVolumeMismatch, "Degraded"},
		{metav1.ConditionFalse, v1alpha1.ReasonContainersDown, "Degraded"},
		{metav1.ConditionUnknown, v1alpha1.ReasonAWSError, "Degraded"},
		{metav1.ConditionFalse, v1alpha1.ReasonCrashConsistent, "Degraded"},
		{metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, "Degraded"},
		{metav1.ConditionFalse, v1alpha1.ReasonClassNotFound, "Degraded"},
		{metav1.ConditionFalse, v1alpha1.ReasonNoDefaultClass, "Degraded"},
		{metav1.ConditionFalse, v1alpha1.ReasonNamespaceNotAllowed, "Degraded"},
		{metav1.ConditionFalse, v1alpha1.ReasonClassViolation, "Degraded"},
		{metav1.ConditionFalse, v1alpha1.ReasonForeignSnapshot, "Degraded"},
		{metav1.ConditionFalse, v1alpha1.ReasonInvalidSchedule, "Degraded"},
	})
}

// The fixtures must be objects the API accepts: strict decoding into the
// real types catches misspelled fields that would make a test vacuous.
func TestFixturesAreValidObjects(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdataDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 12 {
		t.Fatalf("want at least 12 fixtures, found %d", len(files))
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(raw, &meta); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var into any
		switch meta.Kind {
		case "XDrive":
			into = &v1alpha1.XDrive{}
		case "Workstation":
			into = &v1alpha1.Workstation{}
		default:
			t.Fatalf("%s: unexpected kind %q", f, meta.Kind)
		}
		if meta.APIVersion != v1alpha1.GroupVersion.String() {
			t.Errorf("%s: apiVersion %q", f, meta.APIVersion)
		}
		if err := yaml.UnmarshalStrict(raw, into); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// The argocd-cm snippet in docs/argocd-health.md must carry the scripts
// byte for byte, under the keys Argo CD looks up.
func TestConfigMapSnippetMatchesScripts(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(docsDir, "argocd-health.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(doc, -1)
	var cm *struct {
		Kind     string            `json:"kind"`
		Metadata metav1.ObjectMeta `json:"metadata"`
		Data     map[string]string `json:"data"`
	}
	for _, b := range blocks {
		if !bytes.Contains(b[1], []byte("name: argocd-cm")) {
			continue
		}
		cm = &struct {
			Kind     string            `json:"kind"`
			Metadata metav1.ObjectMeta `json:"metadata"`
			Data     map[string]string `json:"data"`
		}{}
		if err := yaml.Unmarshal(b[1], cm); err != nil {
			t.Fatalf("argocd-cm snippet: %v", err)
		}
		break
	}
	if cm == nil {
		t.Fatal("no ```yaml block with the argocd-cm ConfigMap in docs/argocd-health.md")
	}
	if cm.Kind != "ConfigMap" || cm.Metadata.Name != "argocd-cm" || cm.Metadata.Namespace != "argocd" {
		t.Errorf("snippet is %s %s/%s, want ConfigMap argocd/argocd-cm", cm.Kind, cm.Metadata.Namespace, cm.Metadata.Name)
	}
	for key, path := range map[string]string{
		"resource.customizations.health.xdrive.io_XDrive":      xdriveScript,
		"resource.customizations.health.xdrive.io_Workstation": workstationPath,
	} {
		got, ok := cm.Data[key]
		if !ok {
			t.Errorf("argocd-cm snippet lacks %s", key)
			continue
		}
		if want := readScript(t, path); got != want {
			t.Errorf("%s differs from %s", key, path)
		}
	}
}
