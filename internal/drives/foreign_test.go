package drives

import (
	"testing"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// TestForeign: a drive restores only its own snapshots, or untagged ones.
func TestForeign(t *testing.T) {
	s := NewService(nil, "prod", 0, nil)
	own := "team-a/home"
	for name, tc := range map[string]struct {
		tags            map[string]string
		foreign, legacy bool
	}{
		"own":                      {map[string]string{cloud.TagCluster: "prod", cloud.TagDrive: own, cloud.TagName: "home"}, false, false},
		"own UID":                  {map[string]string{cloud.TagCluster: "prod", cloud.TagDrive: own, cloud.TagDriveUID: "uid-1"}, false, false},
		"earlier drive, same name": {map[string]string{cloud.TagCluster: "prod", cloud.TagDrive: own, cloud.TagDriveUID: "uid-0"}, true, false},
		"other namespace":          {map[string]string{cloud.TagCluster: "prod", cloud.TagDrive: "team-b/home", cloud.TagName: "home"}, true, false},
		"other installation":       {map[string]string{cloud.TagCluster: "staging", cloud.TagDrive: own}, true, false},
		"drive tag only":           {map[string]string{cloud.TagDrive: own}, true, false},
		"any xdrive.io tag":        {map[string]string{cloud.TagDriveUID: "u", cloud.TagName: "home"}, true, false},
		"legacy Name tag":          {map[string]string{cloud.TagName: "home"}, false, true},
		"no tags":                  {nil, false, true},
		"look-alike tag prefix":    {map[string]string{"xdrive.iox": "y"}, false, true},
	} {
		sn := Snapshot{ID: "snap-1", Tags: tc.tags}
		if got := s.Foreign(sn, own, "uid-1"); got != tc.foreign {
			t.Errorf("%s: Foreign = %t, want %t", name, got, tc.foreign)
		}
		if got := sn.Untagged(); got != tc.legacy {
			t.Errorf("%s: Untagged = %t, want %t", name, got, tc.legacy)
		}
	}
}
