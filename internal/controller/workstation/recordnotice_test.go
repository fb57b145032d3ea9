package workstation

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// TestRecordNotice: a notice is written on a Workstation unless it is of an
// earlier object's instance, or it would overwrite an unread notice of the
// current or torn-down instance with one of another instance (I6: that
// notice would be lost before the Workstation read it).
func TestRecordNotice(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	kind := v1alpha1.NoticeSpotInterruption
	ws := func(current, tornDown, annotated string, processed bool) *v1alpha1.Workstation {
		w := &v1alpha1.Workstation{ObjectMeta: metav1.ObjectMeta{Name: "dev", UID: "uid-dev"}}
		w.Status.InstanceID = current
		if tornDown != "" {
			w.Status.Teardown = &v1alpha1.Teardown{InstanceID: tornDown}
		}
		if annotated != "" {
			w.Annotations = map[string]string{NoticeAnnotation(kind): FormatNotice(annotated, at)}
		}
		if processed {
			w.Status.Notices = []v1alpha1.ProcessedNotice{{Kind: kind, InstanceID: annotated, Time: metav1.NewTime(at)}}
		}
		return w
	}
	for _, c := range []struct {
		name     string
		ws       *v1alpha1.Workstation
		instance string
		owner    string
		want     bool
	}{
		{"no notice yet", ws("i-1", "", "", false), "i-1", "uid-dev", true},
		{"an earlier object's instance", ws("i-1", "", "", false), "i-0", "uid-earlier", false},
		{"the owner not known (an older tag set)", ws("i-1", "", "", false), "i-1", "", true},
		{"a newer notice of the same instance", ws("i-1", "", "i-1", false), "i-1", "uid-dev", true},
		{"over the current instance's unread notice", ws("i-1", "", "i-1", false), "i-2", "uid-dev", false},
		{"over the torn-down instance's unread notice", ws("i-2", "i-1", "i-1", false), "i-3", "uid-dev", false},
		{"over the current instance's notice once read", ws("i-1", "", "i-1", true), "i-2", "uid-dev", true},
		{"over a notice of an instance no longer the Workstation's", ws("i-2", "", "i-1", false), "i-3", "uid-dev", true},
		{"the current instance's over another's", ws("i-2", "", "i-1", false), "i-2", "uid-dev", true},
	} {
		if got := RecordNotice(c.ws, kind, c.instance, c.owner, at.Add(time.Minute)); got != c.want {
			t.Errorf("%s: RecordNotice = %v, want %v", c.name, got, c.want)
		}
	}
}
