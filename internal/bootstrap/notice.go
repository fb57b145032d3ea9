package bootstrap

import (
	"fmt"
	"time"
)

// NoticeKindIdleStop is the notice of an idle stop to come.
const NoticeKindIdleStop = "idle-stop"

// NoticeKindBudget is the notice of a budget stop to come: 80% of the
// class's monthly budget is spent, and the deadline is when the rest runs out at today's prices.
const NoticeKindBudget = "budget"

// Notice is what `xdrive-ctl notify` tells the instance's users: a wall
// message, and /run/xdrive/notice, which programs can poll.
type Notice struct {
	// Kind is what comes: NoticeKindIdleStop or NoticeKindBudget.
	Kind string
	// Deadline is when it comes.
	Deadline time.Time
}

// NotifyArgs are the arguments of `xdrive-ctl notify`: a fixed word and an
// RFC 3339 time, so they are safe in a command line.
func (n Notice) NotifyArgs() (string, error) {
	if n.Kind != NoticeKindIdleStop && n.Kind != NoticeKindBudget {
		return "", fmt.Errorf("unknown notice kind %q", n.Kind)
	}
	return " notify --kind " + n.Kind + " --deadline " + n.Deadline.UTC().Format(time.RFC3339), nil
}
