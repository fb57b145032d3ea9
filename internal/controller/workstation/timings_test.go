package workstation

import (
	"testing"
	"time"
)

// TestStatusTimeout: a status check has 10 s unless the Timings give it more
// (make demo-real's emulated instances answer in 10-30 s).
func TestStatusTimeout(t *testing.T) {
	if got := (Timings{}).statusTimeout(); got != statusTimeout {
		t.Errorf("default status timeout = %s, want %s", got, statusTimeout)
	}
	if got := (Timings{StatusTimeout: time.Minute}).statusTimeout(); got != time.Minute {
		t.Errorf("status timeout with Timings.StatusTimeout 1m = %s", got)
	}
}
