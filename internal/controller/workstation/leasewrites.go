package workstation

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// leaseWrites remembers, for each Workstation, the drive whose lease it
// took last and the resourceVersion that write returned, until the cache
// shows it. A reconcile goes on from the write's answer; the next one waits
// for the cache, as a drive read without the lease would drop the launch.
type leaseWrites struct {
	mu      sync.Mutex
	written map[types.UID]leaseWrite
}

type leaseWrite struct {
	drive types.NamespacedName
	rv    uint64
}

// wrote records the write of the lease of xd that Workstation ws took.
func (l *leaseWrites) wrote(ws types.UID, xd *v1alpha1.XDrive) {
	rv, err := strconv.ParseUint(xd.ResourceVersion, 10, 64)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.written == nil {
		l.written = map[types.UID]leaseWrite{}
	}
	l.written[ws] = leaseWrite{drive: client.ObjectKeyFromObject(xd), rv: rv}
}

// caughtUp reports whether the cached drive shows the Workstation's last
// lease write; once it does, the write is forgotten.
func (l *leaseWrites) caughtUp(ctx context.Context, c client.Reader, ws *v1alpha1.Workstation) (bool, error) {
	l.mu.Lock()
	w, ok := l.written[ws.UID]
	l.mu.Unlock()
	if !ok {
		return true, nil
	}
	xd := &v1alpha1.XDrive{}
	if err := c.Get(ctx, w.drive, xd); client.IgnoreNotFound(err) != nil {
		return true, fmt.Errorf("read XDrive %s, whose lease Workstation %s/%s took: %w", w.drive, ws.Namespace, ws.Name, err)
	}
	if rv, err := strconv.ParseUint(xd.ResourceVersion, 10, 64); err == nil && rv < w.rv {
		return false, nil
	}
	l.forget(ws.UID)
	return true, nil
}

// forget drops the Workstation's record.
func (l *leaseWrites) forget(uid types.UID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.written, uid)
}
