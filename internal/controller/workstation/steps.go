package workstation

// A reconcile's work is split into steps, each a small type over the
// shared scope. Each step owns its status fields and conditions
// (ownership_test.go holds the table): another step asks it through one
// of its methods, never writes them itself.
type (
	// admissionStep resolves the class and admits the Workstation (class.go).
	admissionStep struct{ *scope }
	// launchStep prepares and issues a launch: placement, the reattach
	// choice, the launch record, the instance's identity (launch.go, reattach.go).
	launchStep struct{ *scope }
	// leaseStep takes and gives back the drive's lease (launch.go).
	leaseStep struct{ *scope }
	// runStep follows the running instance and its status checks (running.go).
	runStep struct{ *scope }
	// idleStep follows the instance's activity and stops it when idle (idle.go).
	idleStep struct{ *scope }
	// teardownStep releases the drive and ends the instance; it takes the
	// interruption notices, which start teardowns (teardown.go, notices.go).
	teardownStep struct{ *scope }
	// budgetStep keeps the Workstation within its class's monthly budget (budget.go).
	budgetStep struct{ *scope }
	// scheduleStep starts and stops the Workstation by spec.schedule and
	// measures its launches for the lead (schedule.go).
	scheduleStep struct{ *scope }
	// accessStep opens the instance to spec.access and publishes how to reach it (access.go).
	accessStep struct{ *scope }
)

func (s *scope) admission() admissionStep { return admissionStep{s} }
func (s *scope) launch() launchStep       { return launchStep{s} }
func (s *scope) lease() leaseStep         { return leaseStep{s} }
func (s *scope) run() runStep             { return runStep{s} }
func (s *scope) idle() idleStep           { return idleStep{s} }
func (s *scope) teardown() teardownStep   { return teardownStep{s} }
func (s *scope) access() accessStep       { return accessStep{s} }
func (s *scope) budget() budgetStep       { return budgetStep{s} }
func (s *scope) schedule() scheduleStep   { return scheduleStep{s} }
