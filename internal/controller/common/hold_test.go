package common

import (
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// TestStoredAlike: a status whose only change is below a second of a time
// is stored alike, so Finish does not write it; a second's change is written.
func TestStoredAlike(t *testing.T) {
	at := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	status := func(launch time.Time) v1alpha1.WorkstationStatus {
		lt := metav1.NewTime(launch)
		return v1alpha1.WorkstationStatus{InstanceID: "i-1", LaunchTime: &lt}
	}
	if !StoredAlike(status(at), status(at.Add(300*time.Millisecond))) {
		t.Error("times 300 ms apart in one second are not stored alike")
	}
	if StoredAlike(status(at), status(at.Add(time.Second))) {
		t.Error("times a second apart are stored alike")
	}
	other := status(at)
	other.InstanceID = "i-2"
	if StoredAlike(status(at), other) {
		t.Error("different instances are stored alike")
	}
}

// TestHoldWaitsForReportsOnly: a hold keeps back a report-only write, and
// comes back by its end; it never keeps back a decision, an Event, a
// failure or a finalizer's removal.
func TestHoldWaitsForReportsOnly(t *testing.T) {
	now := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	withEvent := &Events{}
	withEvent.Add(false, "Launching", "Launch", "Launched %s", "i-1")
	cases := []struct {
		name        string
		until       time.Time
		reportOnly  bool
		ev          *Events
		remove      bool
		result      ctrl.Result
		err         error
		held        bool
		wantRequeue time.Duration
	}{
		{name: "no hold", reportOnly: true, ev: &Events{}},
		{name: "a report", until: now.Add(10 * time.Second), reportOnly: true, ev: &Events{}, held: true, wantRequeue: 10 * time.Second},
		{name: "a report, back sooner anyway", until: now.Add(10 * time.Second), reportOnly: true, ev: &Events{},
			result: ctrl.Result{RequeueAfter: 3 * time.Second}, held: true, wantRequeue: 3 * time.Second},
		{name: "a decision", until: now.Add(10 * time.Second), ev: &Events{}},
		{name: "an Event", until: now.Add(10 * time.Second), reportOnly: true, ev: withEvent},
		{name: "a failure", until: now.Add(10 * time.Second), reportOnly: true, ev: &Events{}, err: errors.New("boom")},
		{name: "a finalizer's removal", until: now.Add(10 * time.Second), reportOnly: true, ev: &Events{}, remove: true},
		{name: "a hold already over", until: now, reportOnly: true, ev: &Events{}},
	}
	for _, c := range cases {
		var h Hold
		h.Until(now, c.until)
		res, held := h.Held(now, c.reportOnly, c.ev, c.remove, c.result, c.err)
		if held != c.held || (held && res.RequeueAfter != c.wantRequeue) {
			t.Errorf("%s: Held = %+v, %v; want held %v, back after %s", c.name, res, held, c.held, c.wantRequeue)
		}
	}
}
