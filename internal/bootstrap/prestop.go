package bootstrap

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// Kinds of the stop a release announces in /run/xdrive/notice.
const (
	NoticeKindStop             = "stop"
	NoticeKindSpotInterruption = "spot-interruption"
	NoticeKindRebalance        = "rebalance"
)

// HookOutcome is what one container's preStop hook did, as `xdrive-ctl
// release` prints it and `xdrive-ctl status` reports it.
type HookOutcome struct {
	Container string                  `json:"container"`
	Outcome   v1alpha1.PreStopOutcome `json:"outcome"`
	Seconds   int32                   `json:"seconds"`
	ExitCode  int32                   `json:"exitCode"`
}

// Release is what the operator asks of `xdrive-ctl release`: the kind of
// stop (a NoticeKind) and the time by which the drive must be flushed.
type Release struct {
	Kind     string
	Deadline time.Time
}

// Args are the release's arguments: fixed words and an RFC 3339 time, safe
// in a command line. The zero Release has none (the instance's defaults).
func (r Release) Args() (string, error) {
	if r.Kind == "" {
		return "", nil
	}
	if !slices.Contains([]string{NoticeKindStop, NoticeKindIdleStop, NoticeKindSpotInterruption, NoticeKindRebalance}, r.Kind) {
		return "", fmt.Errorf("unknown release kind %q", r.Kind)
	}
	return " --kind " + r.Kind + " --deadline " + r.Deadline.UTC().Format(time.RFC3339), nil
}

// ParseRelease reads the output of `xdrive-ctl release`: a "prestop NAME
// OUTCOME SECONDS EXIT" line per hook, and spot-notice when the instance's
// watcher saw one. Unknown lines are skipped.
func ParseRelease(out []byte) Status {
	st := Status{Phase: PhaseReleased, Released: true}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 1 && f[0] == SpotNoticeWord:
			st.SpotNotice = true
		case len(f) == 5 && f[0] == "prestop":
			secs, err1 := strconv.ParseInt(f[3], 10, 32)
			rc, err2 := strconv.ParseInt(f[4], 10, 32)
			if err1 == nil && err2 == nil {
				st.PreStop = append(st.PreStop, HookOutcome{Container: f[1], Outcome: v1alpha1.PreStopOutcome(f[2]), Seconds: int32(secs), ExitCode: int32(rc)})
			}
		}
	}
	return st
}
