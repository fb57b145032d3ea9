package harness

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/xdrive-io/xdrive/internal/operator"
	testenv "github.com/xdrive-io/xdrive/test/envtest"
)

// ManagerConfig runs the manager as a deployment would rather than as the
// tests' admin: with its own identity on the API server, and the manager
// options of the binary (a cluster-wide cache, leader election, secure
// metrics), where Start watches one namespace as system:masters.
type ManagerConfig struct {
	// Config is the manager's connection to the API server, for example one
	// that impersonates the deployment's ServiceAccount. Nil keeps the admin's.
	Config *rest.Config
	// Options are the manager's options. A nil Scheme gets testenv.NewScheme;
	// controller names are never validated (many managers share a process).
	Options ctrl.Options
}

// StartManager runs a fresh manager configured by mc; the operator's options
// are the stack's, as with Start. Stop, Restart and Close work as after Start
// (Restart starts it with Start's defaults).
func (s *Stack) StartManager(mc ManagerConfig) error {
	cfg := rest.CopyConfig(s.cfg)
	if mc.Config != nil {
		cfg = rest.CopyConfig(mc.Config)
		if cfg.QPS == 0 {
			cfg.QPS, cfg.Burst = s.cfg.QPS, s.cfg.Burst
		}
	}
	cfg.Wrap(s.requests.wrap)
	opts := mc.Options
	if opts.Scheme == nil {
		opts.Scheme = testenv.NewScheme()
	}
	// Many managers in one process reuse the controllers' names.
	opts.Controller.SkipNameValidation = aws.Bool(true)
	mgr, err := ctrl.NewManager(cfg, opts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := operator.Setup(ctx, mgr, s.AWS(), s.Options); err != nil {
		cancel()
		return err
	}
	stopped := make(chan error, 1)
	go func() { stopped <- mgr.Start(ctx) }()
	s.mu.Lock()
	s.cancel, s.stopped = cancel, stopped
	s.mu.Unlock()
	return nil
}

// StartManager runs a fresh manager configured by mc (see Stack.StartManager).
func (h *Harness) StartManager(mc ManagerConfig) { h.T.Helper(); h.check(h.Stack.StartManager(mc)) }
