package common

import (
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CacheCatchUp is how soon a reconcile that read an object older than its
// own last write comes back: the informer is a few milliseconds behind.
const CacheCatchUp = 50 * time.Millisecond

// Writes remembers the resourceVersion of each object's last write by this
// controller, so that a reconcile that reads an older copy from the cache
// waits for the cache instead of repeating AWS calls its write recorded.
// resourceVersions are compared as the integers the API server issues; one
// that is not an integer never counts as stale.
type Writes struct {
	mu      sync.Mutex
	written map[types.UID]uint64
}

// Stale reports whether obj is older than this controller's last write of it.
func (w *Writes) Stale(obj client.Object) bool {
	if w == nil {
		return false
	}
	rv, err := strconv.ParseUint(obj.GetResourceVersion(), 10, 64)
	if err != nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return rv < w.written[obj.GetUID()]
}

// Wrote records the resourceVersion a write returned.
func (w *Writes) Wrote(obj client.Object) {
	if w == nil {
		return
	}
	rv, err := strconv.ParseUint(obj.GetResourceVersion(), 10, 64)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.written == nil {
		w.written = map[types.UID]uint64{}
	}
	w.written[obj.GetUID()] = max(rv, w.written[obj.GetUID()])
}

// Forget drops an object that is gone.
func (w *Writes) Forget(obj client.Object) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.written, obj.GetUID())
}

// storedAlike compares values as the API server stores them: a metav1.Time
// to the second and a metav1.MicroTime to the microsecond, as they are
// serialized; otherwise as equality.Semantic.
var storedAlike = conversion.EqualitiesOrDie(
	func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 },
	func(a, b metav1.MicroTime) bool {
		return a.UTC().Truncate(time.Microsecond).Equal(b.UTC().Truncate(time.Microsecond))
	},
	func(a, b metav1.Time) bool { return a.UTC().Truncate(time.Second).Equal(b.UTC().Truncate(time.Second)) },
	func(a, b metav1.FieldsV1) bool { return a.Equal(b) },
)

// StoredAlike reports whether a and b would be stored alike: a status
// whose only change is below a second of a time is not written.
func StoredAlike(a, b any) bool {
	return storedAlike.DeepEqual(a, b)
}
