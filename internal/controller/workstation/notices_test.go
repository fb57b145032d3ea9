package workstation

import (
	"testing"
	"time"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// TestFlushDeadlineCountsFromNotice: the flush a notice allows ends its
// FlushTimeout after the notice's own time, not after it was read; a notice
// stamped ahead of the operator's clock counts from now; a Stop under way
// is cut short by a later notice.
func TestFlushDeadlineCountsFromNotice(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	const flush = 20 * time.Second
	for name, tc := range map[string]struct {
		noticeAt time.Time
		stopping bool
		want     time.Time
	}{
		"read 15 s late":     {noticeAt: now.Add(-15 * time.Second), want: now.Add(5 * time.Second)},
		"read at once":       {noticeAt: now, want: now.Add(flush)},
		"stamped in future":  {noticeAt: now.Add(3 * time.Second), want: now.Add(flush)},
		"read past deadline": {noticeAt: now.Add(-time.Minute), want: now.Add(-40 * time.Second)},
		"cuts a Stop short":  {noticeAt: now.Add(-5 * time.Second), stopping: true, want: now.Add(15 * time.Second)},
	} {
		t.Run(name, func(t *testing.T) {
			ws := &v1alpha1.Workstation{}
			ws.Annotations = map[string]string{NoticeAnnotation(v1alpha1.NoticeSpotInterruption): FormatNotice("i-1", tc.noticeAt)}
			ws.Status.InstanceID = "i-1"
			ws.Status.Phase = v1alpha1.WorkstationPhaseRunning
			s := (&scope{r: &Reconciler{Timings: Timings{FlushTimeout: flush, StopTimeout: 5 * time.Minute}},
				ws: ws, st: &ws.Status, now: now}).teardown()
			if tc.stopping {
				s.startTeardown(v1alpha1.TeardownStop)
			}
			s.takeNotices()
			td := ws.Status.Teardown
			if td == nil {
				t.Fatal("no teardown started")
			}
			if !td.Deadline.Time.Equal(tc.want) {
				t.Errorf("deadline %s, want %s", td.Deadline.Time, tc.want)
			}
			if tc.stopping && td.Reason != v1alpha1.TeardownStop {
				t.Errorf("the Stop's teardown was replaced: %s", td.Reason)
			}
		})
	}
}
