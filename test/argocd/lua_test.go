// Package argocd tests the Argo CD health checks in docs/argocd and the IAM
// policy in docs/iam-policy.json.
package argocd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Paths are relative to this package's directory, where go test runs.
const (
	docsDir         = "../../docs"
	xdriveScript    = docsDir + "/argocd/health-xdrive.lua"
	workstationPath = docsDir + "/argocd/health-workstation.lua"
	testdataDir     = "testdata"
)

// Health is what Argo CD reads from a health script's returned table.
type Health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// The health codes Argo CD accepts; any other becomes Unknown.
var validHealth = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true,
	"Suspended": true, "Missing": true, "Unknown": true,
}

const invalidHealthStatus = "Lua returned an invalid health status"

// runHealth runs a health script the way Argo CD runs a custom check from
// argocd-cm (util/lua: VM.runLua and VM.ExecuteHealthLua, UseOpenLibs false):
// no standard libraries except package, base, table and a restricted os; a
// one-second deadline; the object as the global `obj`; the script's last
// returned value must be a table, read as {status, message}.
func runHealth(script string, obj *unstructured.Unstructured) (Health, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.fn), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return Health{}, err
		}
	}
	// Argo CD also preloads its restricted os, so `require("os")` works.
	l.PreloadModule(lua.OsLibName, safeOsLoader)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, obj.Object))
	if err := l.DoString(script); err != nil {
		return Health{}, err
	}
	ret := l.Get(-1)
	tbl, ok := ret.(*lua.LTable)
	if !ok {
		return Health{}, fmt.Errorf("expect table output from Lua script, not %s", ret.Type())
	}
	b, err := json.Marshal(tableToGo(tbl))
	if err != nil {
		return Health{}, err
	}
	var h Health
	if err := json.Unmarshal(b, &h); err != nil {
		return Health{}, err
	}
	if !validHealth[h.Status] {
		return Health{Status: "Unknown", Message: invalidHealthStatus}, nil
	}
	return h, nil
}

// safeOsFuncs mirror Argo CD's restricted os library: time and date only.
var safeOsFuncs = map[string]lua.LGFunction{
	"time": func(l *lua.LState) int { l.Push(lua.LNumber(time.Now().Unix())); return 1 },
	"date": func(l *lua.LState) int { l.Push(lua.LString(time.Now().UTC().Format(time.RFC3339))); return 1 },
}

// openSafeOs mirrors Argo CD's OpenSafeOs, which registers its functions
// under the table module's name: there is no global `os` table, only
// `require("os")`. The health scripts use neither.
func openSafeOs(l *lua.LState) int {
	mod := l.RegisterModule(lua.TabLibName, safeOsFuncs)
	l.Push(mod)
	return 1
}

func safeOsLoader(l *lua.LState) int {
	l.Push(l.SetFuncs(l.NewTable(), safeOsFuncs))
	return 1
}

// decodeValue converts an unstructured object as Argo CD does: integers
// (int64 in objects read from the API server) and floats become numbers,
// maps tables, lists arrays, null nil.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case float64, int, int32, int64:
		return lua.LNumber(reflect.ValueOf(v).Convert(reflect.TypeFor[float64]()).Float())
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for k, item := range v {
			tbl.RawSetH(lua.LString(k), decodeValue(l, item))
		}
		return tbl
	}
	return lua.LNil
}

// tableToGo converts a returned table for JSON encoding, as gopher-json does
// for the string-keyed tables health scripts return.
func tableToGo(t *lua.LTable) any {
	if t.MaxN() > 0 {
		arr := make([]any, 0, t.MaxN())
		for i := 1; i <= t.MaxN(); i++ {
			arr = append(arr, luaToGo(t.RawGetInt(i)))
		}
		return arr
	}
	m := map[string]any{}
	t.ForEach(func(k, v lua.LValue) {
		m[k.String()] = luaToGo(v)
	})
	return m
}

func luaToGo(v lua.LValue) any {
	switch x := v.(type) {
	case lua.LString:
		return string(x)
	case lua.LNumber:
		return float64(x)
	case lua.LBool:
		return bool(x)
	case *lua.LTable:
		return tableToGo(x)
	}
	return nil
}

// loadObject reads a YAML or JSON fixture into an unstructured object, with
// numbers typed as the API server's JSON decoding types them (int64).
func loadObject(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(js); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return obj
}

func readScript(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The harness itself must reject what Argo CD rejects, or the health tests
// would prove nothing about Argo CD.
func TestHarnessBehavesLikeArgoCD(t *testing.T) {
	obj := loadObject(t, "xdrive-archived.yaml")
	cases := []struct {
		name    string
		script  string
		want    Health
		wantErr bool
	}{
		{name: "string library is not loaded", script: `return {status = string.lower("HEALTHY")}`, wantErr: true},
		{name: "string methods are not available", script: `local s = "x"; return {status = s:upper()}`, wantErr: true},
		{name: "io library is not loaded", script: `io.write("x"); return {status = "Healthy"}`, wantErr: true},
		{name: "non-table return", script: `return "Healthy"`, wantErr: true},
		{name: "invalid status", script: `return {status = "Fine", message = "m"}`, want: Health{Status: "Unknown", Message: invalidHealthStatus}},
		{name: "integers compare as numbers", script: `if obj.metadata.generation == 2 and obj.status.snapshotCount > 3 then return {status = "Healthy", message = tostring(obj.metadata.generation)} end return {status = "Degraded"}`, want: Health{Status: "Healthy", Message: "2"}},
		{name: "globals come from obj", script: `return {status = "Healthy", message = obj.status.conditions[1].reason}`, want: Health{Status: "Healthy", Message: "Archived"}},
		{name: "table library and require(os) are available", script: `local os = require("os"); local t = {}; table.insert(t, "a"); if os.time() > 0 then return {status = "Healthy", message = t[1]} end`, want: Health{Status: "Healthy", Message: "a"}},
		{name: "no io or debug", script: `if io == nil and debug == nil and string == nil then return {status = "Healthy"} end return {status = "Degraded"}`, want: Health{Status: "Healthy"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runHealth(tc.script, obj)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want an error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestHarnessTimesOut(t *testing.T) {
	start := time.Now()
	_, err := runHealth(`while true do end`, loadObject(t, "xdrive-archived.yaml"))
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("an endless script must be stopped by the one-second deadline, got %v after %s", err, time.Since(start))
	}
}
