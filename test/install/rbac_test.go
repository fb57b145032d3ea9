package install_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/operator"
	"github.com/xdrive-io/xdrive/test/harness"
)

const converge = 90 * time.Second

// TestRBACSufficient runs the real manager as the ServiceAccount of
// dist/install.yaml, with only the RBAC that config/rbac gives it, through a
// whole lifecycle: launch, spot interruption and relaunch, stop, start,
// delete. Any request the API server forbids fails the test, and so does a
// permission of the ClusterRole that the run never used.
func TestRBACSufficient(t *testing.T) {
	env := requireEnv(t)
	ctx := testCtx(t)
	objs := decodeDocs(t, installYAML(t))

	// The namespace, ServiceAccount and RBAC, applied for real as a deploy would.
	for _, u := range ofKind(objs, "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding") {
		if err := apply(ctx, env.Client, u); err != nil {
			t.Fatalf("applying %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	sas := ofKind(objs, "ServiceAccount")
	if len(sas) != 1 {
		t.Fatalf("%d ServiceAccounts, want 1", len(sas))
	}
	sa := sas[0]
	systemNS := sa.GetNamespace()
	user := fmt.Sprintf("system:serviceaccount:%s:%s", systemNS, sa.GetName())
	dep, _ := deployment(t, objs)
	if got, _, _ := unstructured.NestedString(dep.Object, "spec", "template", "spec", "serviceAccountName"); got != sa.GetName() {
		t.Fatalf("the Deployment runs as %q, not the ServiceAccount %q", got, sa.GetName())
	}

	// The manager's identity: the ServiceAccount, as the API server sees a pod's token.
	calls := &apiCalls{}
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + systemNS, "system:authenticated"}}
	cfg.Wrap(calls.wrap)

	h := harness.New(t, harness.Config{Env: env, Options: operator.Options{
		QueueName: "xdrive-interruptions", CreateQueue: true, PollInterval: time.Minute,
		GCInterval: 2 * time.Second,
	}})
	h.Proxy.SetSpotPrice("t3.large", "us-east-1a", "0.0200")
	h.Proxy.SetSpotPrice("t3.large", "us-east-1b", "0.0300")
	metricsAddr := freeAddr(t)
	// The options of cmd/main.go: a cluster-wide cache (Secrets filtered by
	// label), leader election, secure metrics.
	h.StartManager(harness.ManagerConfig{Config: cfg, Options: ctrl.Options{
		Cache:                   operator.CacheOptions(),
		LeaderElection:          true,
		LeaderElectionID:        operator.LeaderElectionID,
		LeaderElectionNamespace: systemNS, // in a pod, read from the ServiceAccount's mount
		Metrics: metricsserver.Options{BindAddress: metricsAddr, SecureServing: true,
			FilterProvider: filters.WithAuthenticationAndAuthorization},
		HealthProbeBindAddress: "0",
	}})

	// Every wait ends at the first forbidden request.
	eventually := func(what string, cond func() (bool, string)) {
		t.Helper()
		h.Eventually(converge, what, func() (bool, string) {
			if forbidden := calls.forbidden(); len(forbidden) > 0 {
				t.Fatalf("waiting for %s: the API server forbade requests of %s:\n%s", what, user, strings.Join(forbidden, "\n"))
			}
			return cond()
		})
	}

	// Launch, interruption and relaunch in the other zone, stop, start, delete.
	h.Create(h.NewDrive("data", 10), h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a", "us-east-1b"))
	eventually("workstation Ready", h.WorkstationReady("box"))
	// A second Workstation waits for the drive: the lease holder is read past the cache.
	other := h.NewWorkstation("other", "data", []string{"t3.large"}, "us-east-1a")
	h.Create(other)
	eventually("other waits for the drive", func() (bool, string) {
		c := harness.Condition(h.Workstation("other").Status.Conditions, v1alpha1.ConditionReady)
		return c.Reason == v1alpha1.ReasonDriveInUse, fmt.Sprintf("%+v", c)
	})
	h.Delete(&v1alpha1.Workstation{ObjectMeta: metav1.ObjectMeta{Name: "other"}})
	eventually("other gone", func() (bool, string) { return !h.Exists(&v1alpha1.Workstation{}, "other"), "exists" })

	first := h.Workstation("box").Status.InstanceID
	spotWarning(t, h, first)
	eventually("relaunch after the interruption", func() (bool, string) {
		ws := h.Workstation("box")
		ok, _ := h.WorkstationReady("box")()
		return ok && ws.Status.InstanceID != first && ws.Status.Interruptions == 1, fmt.Sprintf("%+v", ws.Status)
	})
	h.SetState("box", v1alpha1.WorkstationStateStopped)
	eventually("drive Archived", h.DriveState("data", v1alpha1.ReasonArchived))
	eventually("workstation Stopped", h.WorkstationPhase("box", v1alpha1.WorkstationPhaseStopped))
	h.SetState("box", v1alpha1.WorkstationStateRunning)
	eventually("workstation Ready again", h.WorkstationReady("box"))
	h.Delete(&v1alpha1.Workstation{ObjectMeta: metav1.ObjectMeta{Name: "box"}})
	eventually("workstation gone", func() (bool, string) { return !h.Exists(&v1alpha1.Workstation{}, "box"), "exists" })
	h.Delete(&v1alpha1.XDrive{ObjectMeta: metav1.ObjectMeta{Name: "data"}})
	eventually("drive gone", func() (bool, string) { return !h.Exists(&v1alpha1.XDrive{}, "data"), "exists" })
	if ok, seen := h.FindEvent("Workstation", "box", v1alpha1.ReasonLaunching); !ok {
		t.Errorf("no Launching event was recorded: %s", seen)
	}

	// The elected leader is this manager, through the leader-election Role.
	lease := &coordinationv1.Lease{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: systemNS, Name: operator.LeaderElectionID}, lease); err != nil || lease.Spec.HolderIdentity == nil {
		t.Errorf("leader lease %s/%s: %v %+v", systemNS, operator.LeaderElectionID, err, lease.Spec)
	}
	scrapeMetrics(t, env.Config, objs, metricsAddr, h.Namespace)
	h.Stop()

	if forbidden := calls.forbidden(); len(forbidden) > 0 {
		t.Errorf("the API server forbade %d requests of %s:\n%s", len(forbidden), user, strings.Join(forbidden, "\n"))
	}
	used := calls.used()
	for p, during := range checkedByAdmission {
		if used.Has(during) {
			used.Insert(p)
		}
	}
	t.Logf("requests made as %s:\n%s", user, strings.Join(sets.List(used), "\n"))
	for _, role := range ofKind(objs, "ClusterRole", "Role") {
		if !boundTo(objs, role, sa) {
			continue
		}
		for _, p := range unusedPermissions(t, role, used) {
			if why, ok := neededBeyondTheRun[p]; ok {
				t.Logf("%s %s grants %s, unused in this run: %s", role.GetKind(), role.GetName(), p, why)
				continue
			}
			t.Errorf("%s %s grants %s, which the run never used: trim it", role.GetKind(), role.GetName(), p)
		}
	}
}

// checkedByAdmission are permissions no request names: an admission plugin
// checks them during the request given.
var checkedByAdmission = map[string]string{
	// OwnerReferencesPermissionEnforcement: the SSH Secret's owner reference
	// blocks the Workstation's deletion.
	"update xdrive.io/workstations/finalizers": "create core/secrets",
}

// neededBeyondTheRun are permissions the run may not exercise, and why they stay.
var neededBeyondTheRun = map[string]string{
	"list core/secrets":                         "informers stream their initial list with a watch, and fall back to list where the API server cannot",
	"list xdrive.io/workstations":               "informers fall back to list (see secrets)",
	"list xdrive.io/xdrives":                    "informers fall back to list (see secrets)",
	"list xdrive.io/workstationclasses":         "informers fall back to list (see secrets)",
	"list core/namespaces":                      "informers fall back to list (see secrets)",
	"patch events.k8s.io/events":                "an Event repeated within minutes becomes a series, which the recorder patches",
	"patch xdrive.io/workstationclasses/status": "a deleted Workstation's spend this month, kept in its class's status under a namespace budget (TestBudgetStopsSafely)",
}

// spotWarning publishes a spot interruption warning for the instance to EventBridge.
func spotWarning(t *testing.T, h *harness.Harness, instanceID string) {
	t.Helper()
	eb := eventbridge.NewFromConfig(h.AWSConfig())
	out, err := eb.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		Source:     aws.String("aws.ec2"),
		DetailType: aws.String("EC2 Spot Instance Interruption Warning"),
		Detail:     aws.String(fmt.Sprintf(`{"instance-id":%q,"instance-action":"terminate"}`, instanceID)),
		Resources:  []string{"arn:aws:ec2:us-east-1a:123456789012:instance/" + instanceID},
	}}})
	if err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("PutEvents: %v (%d failed)", err, out.FailedEntryCount)
	}
}

// apiCalls records what the manager asked of the API server.
type apiCalls struct {
	mu       sync.Mutex
	denied   []string
	resource sets.Set[string] // "verb group/resource[/subresource]"
}

var requestInfo = &request.RequestInfoFactory{
	APIPrefixes:          map[string]sets.Empty{"api": {}, "apis": {}},
	GrouplessAPIPrefixes: map[string]sets.Empty{"api": {}},
}

func (a *apiCalls) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err != nil {
			return resp, err
		}
		info, ierr := requestInfo.NewRequestInfo(req)
		a.mu.Lock()
		defer a.mu.Unlock()
		if resp.StatusCode == http.StatusForbidden {
			a.denied = append(a.denied, req.Method+" "+req.URL.String())
		}
		if ierr == nil && info.IsResourceRequest {
			if a.resource == nil {
				a.resource = sets.New[string]()
			}
			a.resource.Insert(permission(info.Verb, info.APIGroup, info.Resource, info.Subresource))
		}
		return resp, nil
	})
}

func (a *apiCalls) forbidden() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.denied)
}

func (a *apiCalls) used() sets.Set[string] {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.resource.Clone()
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func permission(verb, group, resource, sub string) string {
	if group == "" {
		group = "core"
	}
	if sub != "" {
		resource += "/" + sub
	}
	return verb + " " + group + "/" + resource
}

// boundTo reports whether a binding of objs grants role to the ServiceAccount.
func boundTo(objs []*unstructured.Unstructured, role, sa *unstructured.Unstructured) bool {
	for _, b := range ofKind(objs, "ClusterRoleBinding", "RoleBinding") {
		var binding rbacv1.RoleBinding
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(b.Object, &binding); err != nil {
			continue
		}
		if binding.RoleRef.Kind != role.GetKind() || binding.RoleRef.Name != role.GetName() {
			continue
		}
		for _, s := range binding.Subjects {
			if s.Kind == "ServiceAccount" && s.Name == sa.GetName() && s.Namespace == sa.GetNamespace() {
				return true
			}
		}
	}
	return false
}

// unusedPermissions lists the role's resource permissions missing from used.
func unusedPermissions(t *testing.T, role *unstructured.Unstructured, used sets.Set[string]) []string {
	t.Helper()
	var r rbacv1.ClusterRole
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(role.Object, &r); err != nil {
		t.Fatal(err)
	}
	var unused []string
	for _, rule := range r.Rules {
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				for _, v := range rule.Verbs {
					res, sub, _ := strings.Cut(res, "/")
					if p := permission(v, g, res, sub); !used.Has(p) {
						unused = append(unused, p)
					}
				}
			}
		}
	}
	sort.Strings(unused)
	return unused
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// scrapeMetrics reads /metrics as a scraper bound to the metrics-reader
// ClusterRole: the manager's authn/authz filter makes a TokenReview and a
// SubjectAccessReview as the ServiceAccount. A token without the binding is refused.
func scrapeMetrics(t *testing.T, admin *rest.Config, objs []*unstructured.Unstructured, addr, ns string) {
	t.Helper()
	ctx := testCtx(t)
	cs := kubernetes.NewForConfigOrDie(admin)
	var reader string
	for _, r := range ofKind(objs, "ClusterRole") {
		if strings.HasSuffix(r.GetName(), "metrics-reader") {
			reader = r.GetName()
		}
	}
	if reader == "" {
		t.Fatal("no metrics-reader ClusterRole")
	}
	token := func(name string, bind bool) string {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if bind {
			crb := &rbacv1.ClusterRoleBinding{RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader},
				Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}}}
			crb.Name = ns + "-" + name
			if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
			})
		}
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	get := func(token string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		// The manager serves metrics with a self-signed certificate.
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		_ = resp.Body.Close()
		return resp.StatusCode, nil
	}
	scraper, stranger := token("scraper", true), token("stranger", false)
	var code int
	err := harness.Poll(ctx, 200*time.Millisecond, 30*time.Second, "metrics as the scraper", func() (bool, string, error) {
		var err error
		code, err = get(scraper)
		return err == nil && code == http.StatusOK, fmt.Sprintf("status %d, %v", code, err), nil
	})
	if err != nil {
		t.Error(err)
	}
	if code, err := get(stranger); err != nil || code != http.StatusForbidden {
		t.Errorf("metrics without metrics-reader: status %d, %v; want 403", code, err)
	}
}
