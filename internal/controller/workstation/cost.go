package workstation

import (
	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cost"
)

// observeCost keeps status.cost in line with the current instance (internal/cost).
func (s *scope) observeCost() {
	cost.Observe(s.st, s.now)
}

// closeCost adds a terminated instance's time to status.cost, once: up to
// when it was terminated or seen going (EC2 bills no shutting-down time).
func (s *scope) closeCost(td *v1alpha1.Teardown) {
	end := s.now
	if td.TerminateTime != nil && td.TerminateTime.Time.Before(end) {
		end = td.TerminateTime.Time
	}
	cost.Close(s.st, td.InstanceID, end)
}
