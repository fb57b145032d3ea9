package operator

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/internal/controller/workstation"
)

// LeaderElectionID names the Lease that elects the active manager.
const LeaderElectionID = "xdrive.io"

// CacheOptions are the manager's cache options: Secrets are listed and
// watched only when they carry the operator's label, so the manager holds,
// and reads, no Secret it did not create (docs/security.md); no cached
// object keeps its managedFields, which the operator never reads.
// namespaces, if any, limit the cache to them.
func CacheOptions(namespaces ...string) cache.Options {
	o := cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{workstation.SecretLabelKey: workstation.SecretLabelValue})},
		},
	}
	if len(namespaces) > 0 {
		o.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			o.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return o
}
