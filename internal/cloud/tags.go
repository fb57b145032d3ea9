package cloud

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Ownership tag keys. Every resource the operator creates carries TagCluster;
// the operator modifies or deletes nothing without it.
const (
	// TagPrefix starts every tag key the operator owns.
	TagPrefix   = "xdrive.io/"
	TagCluster  = "xdrive.io/cluster"
	TagDrive    = "xdrive.io/drive"
	TagDriveUID = "xdrive.io/drive-uid"
	// TagDriveSnapshot on a launch's volumes names the snapshot its drive
	// volume is restored from: a detached drive volume is known by it after
	// that snapshot is gone, apart from the root volume, which carries the
	// same tags but is made from the image's snapshot.
	TagDriveSnapshot = "xdrive.io/drive-snapshot"
	// TagTakenAt is when the operator asked for a snapshot, to nanoseconds:
	// EC2's start times may tie at one second.
	TagTakenAt = "xdrive.io/taken-at"
	// TagDetached marks a snapshot taken while its volume was detached (available).
	TagDetached    = "xdrive.io/detached"
	TagWorkstation = "xdrive.io/workstation"
	TagOwnerUID    = "xdrive.io/owner-uid"
	// TagLaunchAttempt on an instance is the Workstation's launch attempt
	// that made it; the instance's SSH host key is derived from it.
	TagLaunchAttempt = "xdrive.io/launch-attempt"
	TagSourceVol     = "xdrive.io/source-volume"
	TagConsistency   = "xdrive.io/consistency"
	TagName          = "Name"

	// TagCopiedFrom on a snapshot copied from another region is the source
	// snapshot's ID, and TagCopiedFromRegion that region: the record that
	// finds the copy again after a crash (CopySnapshot takes no client token).
	TagCopiedFrom       = "xdrive.io/copied-from"
	TagCopiedFromRegion = "xdrive.io/copied-from-region"
)

// ObjectKey renders a namespaced name as used in tag values.
func ObjectKey(namespace, name string) string { return namespace + "/" + name }

// Tags turns a map into EC2 tags, sorted by key for stable requests.
func Tags(m map[string]string) []ec2types.Tag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	out := make([]ec2types.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

// TagMap turns EC2 tags into a map.
func TagMap(tags []ec2types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// OwnedBy reports whether the tags mark the resource as this cluster's.
func OwnedBy(tags []ec2types.Tag, cluster string) bool {
	return TagMap(tags)[TagCluster] == cluster
}

// TagFilter builds a DescribeX filter on one tag.
func TagFilter(key, value string) ec2types.Filter {
	return ec2types.Filter{Name: aws.String("tag:" + key), Values: []string{value}}
}

// Filter builds a DescribeX filter.
func Filter(name string, values ...string) ec2types.Filter {
	return ec2types.Filter{Name: aws.String(name), Values: values}
}

// ClientToken derives a deterministic idempotency token (at most 64 ASCII characters).
func ClientToken(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return "xd-" + hex.EncodeToString(sum[:])[:61]
}

func sortStrings(s []string) { slices.Sort(s) }

// SplitObjectKey splits an ObjectKey into namespace and name.
func SplitObjectKey(key string) (namespace, name string, ok bool) {
	namespace, name, ok = strings.Cut(key, "/")
	return namespace, name, ok && namespace != "" && name != ""
}

// ErrNotOwned is returned when asked to modify a resource without this cluster's ownership tag.
var ErrNotOwned = errors.New("resource is not owned by this xdrive cluster")

// RequireOwned refuses, with ErrNotOwned, a resource whose tags do not name the cluster.
func RequireOwned(tags map[string]string, cluster, action, id string) error {
	if tags[TagCluster] != cluster {
		return fmt.Errorf("%s %s: %w", action, id, ErrNotOwned)
	}
	return nil
}
