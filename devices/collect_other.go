//go:build !linux && !darwin

package devices

import (
	"context"
	"runtime"

	"ztproxy/identity"
)

// collectOS reports only the OS name where ztproxy has no collector:
// every other fact stays unknown.
func collectOS(_ context.Context, r *Report) {
	r.setFact(identity.FactOS, runtime.GOOS)
}
