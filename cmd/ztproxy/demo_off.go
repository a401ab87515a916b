//go:build ztproxy_nodemo

package main

import (
	"context"
	"errors"
	"io"
)

// errNoDemo is what `ztproxy demo` says in a production build: the demo's
// OpenID provider and app are left out of it (build tag ztproxy_nodemo), so
// that code which must never serve production traffic is not even linked.
var errNoDemo = errors.New("this ztproxy build has no demo (built with -tags ztproxy_nodemo, as the release binaries and the container image are); run the demo from source with \"go run ./cmd/ztproxy demo\"")

// cmdDemo refuses: see errNoDemo.
func cmdDemo(_ context.Context, args []string, stdout, _ io.Writer) error {
	if helpRequested(args) {
		printHelp(stdout, "demo", nil)
		return errHelpShown
	}
	return errNoDemo
}
