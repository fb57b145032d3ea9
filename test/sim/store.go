package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	k8sjson "k8s.io/apimachinery/pkg/util/json"
	clienttesting "k8s.io/client-go/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// store reads and status-patches the objects the fake client keeps, without
// its JSON round trips (most of a seed's time went there). It gives what the
// fake client gives: copies of the stored objects with TypeMeta cleared, and
// status patches applied as JSON merge patches to the status alone, with the
// resourceVersion precondition and increment of the fake client. Anything
// else (unstructured objects, other patch types) goes to the fake client.
type store struct {
	tracker clienttesting.ObjectTracker
	scheme  *runtime.Scheme
	gvrs    map[reflect.Type]schema.GroupVersionResource
}

func (s *store) gvr(obj runtime.Object) (schema.GroupVersionResource, error) {
	t := reflect.TypeOf(obj)
	if gvr, ok := s.gvrs[t]; ok {
		return gvr, nil
	}
	gvk, err := apiutil.GVKForObject(obj, s.scheme)
	if err != nil {
		return schema.GroupVersionResource{}, err
	}
	gvr, _ := meta.UnsafeGuessKindToResource(gvk)
	s.gvrs[t] = gvr
	return gvr, nil
}

// typed reports whether obj is a typed object the store can fill.
func typed(obj runtime.Object) bool {
	switch obj.(type) {
	case runtime.Unstructured, *metav1.PartialObjectMetadata, *metav1.PartialObjectMetadataList:
		return false
	}
	return true
}

// stored returns a copy of the stored object of obj's type named k.
func (s *store) stored(obj client.Object, k types.NamespacedName) (client.Object, schema.GroupVersionResource, error) {
	gvr, err := s.gvr(obj)
	if err != nil {
		return nil, gvr, err
	}
	o, err := s.tracker.Get(gvr, k.Namespace, k.Name)
	if err != nil {
		return nil, gvr, err
	}
	co, ok := o.(client.Object)
	if !ok || reflect.TypeOf(o) != reflect.TypeOf(obj) {
		return nil, gvr, fmt.Errorf("sim store: %s/%s is stored as %T, not %T", k.Namespace, k.Name, o, obj)
	}
	return co, gvr, nil
}

// fill sets obj to the copy from, as the fake client returns it.
func fill(obj, from client.Object) {
	reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(from).Elem())
	obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	obj.SetManagedFields(nil)
}

// get reads one object; ok is false when the store cannot serve obj's type.
func (s *store) get(k client.ObjectKey, obj client.Object) (ok bool, err error) {
	if !typed(obj) {
		return false, nil
	}
	o, _, err := s.stored(obj, k)
	if err != nil {
		return apierrors.IsNotFound(err), err
	}
	fill(obj, o)
	return true, nil
}

// list fills a typed list with copies of every stored object of its item type, sorted by namespace and name.
func (s *store) list(item client.Object, list runtime.Object) error {
	gvr, err := s.gvr(item)
	if err != nil {
		return err
	}
	gvk, err := apiutil.GVKForObject(item, s.scheme)
	if err != nil {
		return err
	}
	got, err := s.tracker.List(gvr, gvk, "")
	if err != nil {
		return err
	}
	reflect.ValueOf(list).Elem().Set(reflect.ValueOf(got).Elem())
	return nil
}

// patchStatus applies a JSON merge patch to the status of a stored object.
// ok is false when the store cannot serve it.
func (s *store) patchStatus(obj client.Object, patch client.Patch, opts []client.SubResourcePatchOption) (ok bool, err error) {
	switch obj.(type) {
	case *v1alpha1.Workstation, *v1alpha1.XDrive: // the kinds with a status subresource
	default:
		return false, nil
	}
	if patch.Type() != types.MergePatchType || len(opts) > 0 {
		return false, nil
	}
	cur, gvr, err := s.stored(obj, client.ObjectKeyFromObject(obj))
	if err != nil {
		return apierrors.IsNotFound(err), err
	}
	data, err := patch.Data(obj)
	if err != nil {
		return true, err
	}
	var p struct {
		Metadata *struct {
			ResourceVersion *string `json:"resourceVersion"`
		} `json:"metadata"`
		Status json.RawMessage `json:"status"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return true, err
	}
	if p.Metadata != nil && p.Metadata.ResourceVersion != nil && *p.Metadata.ResourceVersion != "" &&
		*p.Metadata.ResourceVersion != cur.GetResourceVersion() {
		return true, apierrors.NewConflict(gvr.GroupResource(), cur.GetName(), errors.New("object was modified"))
	}
	if p.Status != nil {
		status := reflect.ValueOf(cur).Elem().FieldByName("Status")
		if !status.IsValid() {
			return false, nil
		}
		if err := mergeInto(status, p.Status); err != nil {
			return true, fmt.Errorf("sim store: status patch of %s: %w", cur.GetName(), err)
		}
	}
	rv := cur.GetResourceVersion()
	if rv == "" {
		rv = "0"
	}
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return true, err
	}
	cur.SetResourceVersion(strconv.FormatUint(n+1, 10))
	if err := s.tracker.Update(gvr, cur, cur.GetNamespace()); err != nil {
		return true, err
	}
	fill(obj, cur)
	return true, nil
}

// mergeInto applies the JSON merge patch (RFC 7386) to the value v points at.
func mergeInto(v reflect.Value, patch []byte) error {
	doc, err := json.Marshal(v.Interface())
	if err != nil {
		return err
	}
	var target, p any
	if err := decode(doc, &target); err != nil {
		return err
	}
	if err := decode(patch, &p); err != nil {
		return err
	}
	merged, err := json.Marshal(mergePatch(target, p))
	if err != nil {
		return err
	}
	fresh := reflect.New(v.Type())
	if err := k8sjson.Unmarshal(merged, fresh.Interface()); err != nil {
		return err
	}
	v.Set(fresh.Elem())
	return nil
}

func decode(b []byte, out *any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(out)
}

// mergePatch is RFC 7386: objects merge key by key, null removes, anything else replaces.
func mergePatch(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
		} else {
			tm[k] = mergePatch(tm[k], v)
		}
	}
	return tm
}

// storeGet is the Get of a client over the store, the fake client's for what the store cannot serve.
func (s *store) storeGet(ctx context.Context, c client.WithWatch, k client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if len(opts) == 0 {
		if ok, err := s.get(k, obj); ok {
			return err
		}
	}
	return c.Get(ctx, k, obj, opts...)
}
