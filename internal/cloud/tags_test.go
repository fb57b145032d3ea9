package cloud

import (
	"errors"
	"testing"
)

func TestRequireOwned(t *testing.T) {
	for _, tc := range []struct {
		name string
		tags map[string]string
		ok   bool
	}{
		{"owned", map[string]string{TagCluster: "prod"}, true},
		{"other cluster", map[string]string{TagCluster: "dev"}, false},
		{"untagged", map[string]string{TagName: "prod"}, false},
		{"no tags", nil, false},
	} {
		err := RequireOwned(tc.tags, "prod", "deleting volume", "vol-1")
		if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, ErrNotOwned) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

func TestClientTokenIsStableAndFitsEC2(t *testing.T) {
	a, b := ClientToken("run", "uid", "1"), ClientToken("run", "uid", "1")
	if a != b || len(a) > 64 {
		t.Fatalf("tokens %q, %q: want equal and at most 64 characters", a, b)
	}
	if a == ClientToken("run", "uid", "2") || ClientToken("ab", "c") == ClientToken("a", "bc") {
		t.Fatal("different inputs gave the same token")
	}
}
