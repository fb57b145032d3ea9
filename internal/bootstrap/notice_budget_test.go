package bootstrap

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNotifyBudget (issue #30, part 2): the budget's warning writes the
// notice with kind budget and a wall message that says what happens and
// how it ends, without the idle stop's extend; extend leaves it alone.
func TestNotifyBudget(t *testing.T) {
	s := newSandbox(t, false)
	s.boot(testParams(t))
	s.idleStatus()
	deadline := time.Now().Add(20 * time.Minute).UTC().Truncate(time.Second)
	args, err := Notice{Kind: NoticeKindBudget, Deadline: deadline}.NotifyArgs()
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := s.ctl(nil, strings.Fields(args)...); err != nil {
		t.Fatalf("notify%s: %v\n%s", args, err, stderr)
	}
	n := s.notice(s.read(filepath.Join(s.root, "run/xdrive/notice")))
	if n.Kind != "budget" || n.Deadline != deadline.Format(time.RFC3339) || n.SecondsLeft < 1100 || n.SecondsLeft > 1200 {
		t.Errorf("notice %+v", n)
	}
	wall := s.read(filepath.Join(s.state, "wall"))
	for _, want := range []string{"80% of this machine's monthly budget", deadline.Format("2006-01-02 15:04:05 UTC"), "snapshotted", "the month turns", "xdrive-ctl notice"} {
		if !strings.Contains(wall, want) {
			t.Errorf("the wall message lacks %q:\n%s", want, wall)
		}
	}
	if strings.Contains(wall, "extend") {
		t.Errorf("the budget's wall message offers extend, which does not postpone it:\n%s", wall)
	}
	if _, stderr, err := s.ctl(nil, "extend", "1h"); err != nil {
		t.Fatalf("extend: %v\n%s", err, stderr)
	}
	if out, _, err := s.ctl(nil, "notice"); err != nil || s.notice(out).Kind != "budget" {
		t.Errorf("extend removed the budget's notice: %q, %v", out, err)
	}
}
