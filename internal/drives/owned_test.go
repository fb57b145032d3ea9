package drives

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// TestUnownedResourcesAreNeverTouched: the service has no EC2 client, so any
// call that reached EC2 would panic; refusals must come first.
func TestUnownedResourcesAreNeverTouched(t *testing.T) {
	s := NewService(nil, "prod", time.Millisecond, nil)
	foreign := map[string]string{cloud.TagCluster: "someone-else"}
	ctx := context.Background()
	for name, err := range map[string]error{
		"DeleteVolume":   s.DeleteVolume(ctx, Volume{ID: "vol-1", Tags: foreign}),
		"DeleteSnapshot": s.DeleteSnapshot(ctx, Snapshot{ID: "snap-1", Tags: foreign}),
		"Resize":         s.Resize(ctx, Volume{ID: "vol-1"}, 20),
	} {
		if !errors.Is(err, cloud.ErrNotOwned) {
			t.Errorf("%s on an unowned resource: err = %v, want ErrNotOwned", name, err)
		}
	}
}
