package harness

import "sigs.k8s.io/controller-runtime/pkg/config"

// ctrlConfig lets many managers in one test process reuse controller names.
func ctrlConfig() config.Controller {
	skip := true
	return config.Controller{SkipNameValidation: &skip}
}
