package workstation

import (
	"go/ast"
	"go/constant"
	"go/types"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/controller/srccheck"
)

// fieldOwner names, for each WorkstationStatus field, the one type whose
// methods assign it (steps.go); another step asks the owner through one of
// its methods. "scope" is the shared core.
var fieldOwner = map[string]string{
	"Conditions":         "scope", // only through set; conditionOwner says which step sets each
	"ObservedGeneration": "scope",
	"Phase":              "scope", // setPhase
	// Cost is written in internal/cost, from the scope's observeCost and closeCost.
	"Cost":  "scope",
	"Class": "admissionStep",
	// The instance's identity, from its launch or adoption until its teardown closes.
	"InstanceID": "launchStep", "InstanceType": "launchStep", "CapacityType": "launchStep", "AvailabilityZone": "launchStep", "Region": "launchStep",
	"PrivateIP": "launchStep", "PublicIP": "launchStep", "LaunchTime": "launchStep", "SpotPrice": "launchStep", "PricePerHour": "launchStep",
	"Launches": "launchStep", "Launch": "launchStep", "UnconfirmedLaunch": "launchStep", "FailedRestoreSnapshotID": "launchStep",
	"ReattachVolumeID": "launchStep", "DeclinedVolumeID": "launchStep", "AvoidOfferings": "launchStep",
	"DrivePrewarm": "runStep",
	"Idle":         "idleStep",
	"Budget":       "budgetStep",
	"Teardown":     "teardownStep", "DriveRelease": "teardownStep", "Notices": "teardownStep", "Interruptions": "teardownStep",
	"LastInterruptionTime": "teardownStep", "HaltedGeneration": "teardownStep", "PreStop": "teardownStep",
	"SecurityGroup": "accessStep", "SSH": "accessStep", "Endpoints": "accessStep",
	"Schedule": "scheduleStep",
}

// fieldOfType maps the status's own struct types to the field that holds
// them: a write to one of their fields (td.Deadline = ...) writes that field.
var fieldOfType = map[string]string{
	"Teardown": "Teardown", "DriveRelease": "DriveRelease", "LaunchAttempt": "Launch", "UnconfirmedLaunch": "UnconfirmedLaunch",
	"ManagedSecurityGroup": "SecurityGroup", "IdleState": "Idle", "BudgetState": "Budget", "ResolvedClass": "Class", "SSHAccess": "SSH",
	"DrivePrewarm": "DrivePrewarm", "ProcessedNotice": "Notices", "AvoidedOffering": "AvoidOfferings", "Endpoint": "Endpoints",
	"PreStopStatus": "PreStop", "PreStopResult": "PreStop",
	"ScheduleStatus": "Schedule", "LaunchMeasurement": "Schedule",
}

// decisionOwner names, for each of the scope's decisions, the one type
// whose methods assign it.
var decisionOwner = map[string]string{
	"wait":         "scope",         // waitFor
	"class":        "admissionStep", // the class resolved
	"refused":      "admissionStep",
	"teardownDone": "teardownStep", // with the group gone, the finalizer comes off (Reconcile)
	"sched":        "scheduleStep", // the schedule's window
}

// conditionOwner names the type whose one method sets each condition
// (Ready is computed from the others, in report).
var conditionOwner = map[string]string{
	v1alpha1.ConditionClassAllowed:        "admissionStep",
	v1alpha1.ConditionLaunched:            "launchStep",
	v1alpha1.ConditionRunning:             "runStep",
	v1alpha1.ConditionDriveAttached:       "runStep",
	v1alpha1.ConditionDriveMounted:        "runStep",
	v1alpha1.ConditionContainersRunning:   "runStep",
	v1alpha1.ConditionContainersPreserved: "runStep",
	v1alpha1.ConditionInterrupted:         "teardownStep",
}

// onCopies are functions that assign fields of copies of a status, never the Workstation's.
var onCopies = map[string]string{
	"reportOnly":      "clears the report of two copies to compare the rest",
	"firstReportOnly": "clears the first report of a copy to compare the rest",
}

const thisPackage = "github.com/xdrive-io/xdrive/internal/controller/workstation"

// TestStepsOwnTheirStatus: each status field is assigned by the methods of
// its owner only, and each condition is set at one call site, in a method
// of its owner. No step can undo another's decision behind its back.
func TestStepsOwnTheirStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the package with go list")
	}
	for i, f := range reflect.VisibleFields(reflect.TypeFor[v1alpha1.WorkstationStatus]()) {
		if _, ok := fieldOwner[f.Name]; !ok {
			t.Errorf("status field %d %s has no owner in fieldOwner", i, f.Name)
		}
	}
	for _, c := range append(slices.Clone(v1alpha1.WorkstationDependents), v1alpha1.ConditionInterrupted, v1alpha1.ConditionContainersPreserved) {
		if _, ok := conditionOwner[c]; !ok {
			t.Errorf("condition %s has no owner in conditionOwner", c)
		}
	}
	c := srccheck.Load(t, thisPackage)
	sites := map[string][]string{}
	for _, f := range c.Files {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			owner := receiverType(fn)
			if _, ok := onCopies[fn.Name.Name]; ok {
				continue
			}
			where := func(n ast.Node) string {
				p := c.Fset.Position(n.Pos())
				return filepath.Base(p.Filename) + ":" + strconv.Itoa(p.Line) + " (" + fn.Name.Name + ")"
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				var lhs []ast.Expr
				switch n := n.(type) {
				case *ast.AssignStmt:
					lhs = n.Lhs
				case *ast.IncDecStmt:
					lhs = []ast.Expr{n.X}
				case *ast.CallExpr:
					if cond, ok := setCall(c.Info, n); ok {
						switch {
						case fn.Name.Name == "set" && owner == "scope":
						case cond == "":
							t.Errorf("%s sets a condition not named by a constant: name it, so its one writer can be checked", where(n))
						default:
							sites[cond] = append(sites[cond], where(n))
							if conditionOwner[cond] != owner {
								t.Errorf("%s: %s sets %s, which %s owns", where(n), orNone(owner), cond, conditionOwner[cond])
							}
						}
					}
				}
				for _, e := range lhs {
					if field := statusField(c.Info, e); field != "" && fieldOwner[field] != owner {
						t.Errorf("%s: %s assigns status.%s, which %s owns", where(e), orNone(owner), field, fieldOwner[field])
					}
					if d := scopeField(c.Info, e); d != "" && decisionOwner[d] != owner {
						t.Errorf("%s: %s assigns the scope's %s, which %s owns", where(e), orNone(owner), d, orNone(decisionOwner[d]))
					}
				}
				return true
			})
		}
	}
	for cond := range conditionOwner {
		if len(sites[cond]) != 1 {
			t.Errorf("condition %s is set at %d call sites %v, want 1", cond, len(sites[cond]), sites[cond])
		}
	}
}

// setCall reports whether call sets a condition: the scope's set, or
// v1alpha1.SetCondition; cond is its constant type, "" if not constant.
func setCall(info *types.Info, call *ast.CallExpr) (cond string, ok bool) {
	sel, isSel := call.Fun.(*ast.SelectorExpr)
	if !isSel {
		return "", false
	}
	arg := 0
	switch {
	case sel.Sel.Name == "SetCondition" && pkgOf(info, sel) == srccheck.APIPackage:
		arg = 2
	case sel.Sel.Name == "set" && pkgOf(info, sel) == thisPackage:
	default:
		return "", false
	}
	if len(call.Args) <= arg {
		return "", true
	}
	if tv, ok := info.Types[call.Args[arg]]; ok && tv.Value != nil && tv.Value.Kind() == constant.String {
		return constant.StringVal(tv.Value), true
	}
	return "", true
}

func pkgOf(info *types.Info, sel *ast.SelectorExpr) string {
	if s, ok := info.Selections[sel]; ok && s.Obj().Pkg() != nil {
		return s.Obj().Pkg().Path()
	}
	if tv, ok := info.Types[sel]; ok && tv.Type != nil {
		if f, ok := tv.Type.(*types.Signature); ok && f.Recv() == nil {
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "v1alpha1" {
				return srccheck.APIPackage
			}
		}
	}
	return ""
}

// statusField names the WorkstationStatus field an assignment's target
// lies in, or "".
func statusField(info *types.Info, e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.ParenExpr:
			e = x.X
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.SelectorExpr:
			tv, ok := info.Types[x.X]
			if !ok {
				return ""
			}
			if srccheck.IsAPIType(tv.Type, "WorkstationStatus") {
				return x.Sel.Name
			}
			for typ, field := range fieldOfType {
				if srccheck.IsAPIType(tv.Type, typ) {
					return field
				}
			}
			e = x.X
		default:
			return ""
		}
	}
}

// scopeField names the scope's field an assignment sets, through the scope
// or a step; "" for anything else.
func scopeField(info *types.Info, e ast.Expr) string {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	s, ok := info.Selections[sel]
	if !ok || s.Kind() != types.FieldVal {
		return ""
	}
	recv := s.Recv()
	if p, ok := recv.(*types.Pointer); ok {
		recv = p.Elem()
	}
	n, ok := recv.(*types.Named)
	if !ok || n.Obj().Pkg() == nil || n.Obj().Pkg().Path() != thisPackage {
		return ""
	}
	if name := n.Obj().Name(); name != "scope" && !strings.HasSuffix(name, "Step") {
		return ""
	}
	if _, ok := decisionOwner[sel.Sel.Name]; ok {
		return sel.Sel.Name
	}
	return ""
}

// receiverType is the name of a method's receiver type; "" for a function.
func receiverType(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return ""
	}
	t := fn.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

func orNone(owner string) string {
	if owner == "" {
		return "a function outside the steps"
	}
	return owner
}
