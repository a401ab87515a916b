package ztproxy_test

import (
	"os/exec"
	"strings"
	"testing"
)

// allowedImports is DESIGN.md's dependency direction: a package may import
// only the project packages listed for it. The layers, top to bottom:
// config; the front doors (proxy: listeners and forwarding; forwardauth:
// /.ztp/verify and ext_authz; portal: the /.ztp/ pages); the decision
// engine (decide); the components it decides with (authn, authz,
// riskengine, awscreds, certs, devices, store) and the leaves every layer shares
// (upstream transport, identity headers, audit, metrics, tracing); identity.
var allowedImports = map[string][]string{
	"ztproxy/config": {"ztproxy/identity", "ztproxy/proxy", "ztproxy/decide", "ztproxy/upstream", "ztproxy/idheaders",
		"ztproxy/authn", "ztproxy/authz", "ztproxy/certs", "ztproxy/store", "ztproxy/riskengine", "ztproxy/awscreds",
		"ztproxy/devices", "ztproxy/tracing"},

	"ztproxy/proxy": {"ztproxy/identity", "ztproxy/forwardauth", "ztproxy/portal", "ztproxy/decide", "ztproxy/listener",
		"ztproxy/upstream", "ztproxy/idheaders", "ztproxy/metrics", "ztproxy/awscreds", "ztproxy/tracing"},
	"ztproxy/forwardauth": {"ztproxy/identity", "ztproxy/decide", "ztproxy/idheaders", "ztproxy/metrics", "ztproxy/authn"},
	"ztproxy/portal":      {"ztproxy/identity", "ztproxy/decide", "ztproxy/authn", "ztproxy/awscreds", "ztproxy/devices"},

	"ztproxy/decide": {"ztproxy/identity", "ztproxy/authn", "ztproxy/authz", "ztproxy/certs", "ztproxy/awscreds",
		"ztproxy/upstream", "ztproxy/idheaders", "ztproxy/audit", "ztproxy/metrics", "ztproxy/tracing"},

	"ztproxy/authz": {"ztproxy/identity"},
	"ztproxy/authn": {"ztproxy/identity"},
	"ztproxy/certs": {"ztproxy/identity"},
	// devices (device CA, inventory, posture) builds on certs to load
	// its CA.
	"ztproxy/devices": {"ztproxy/identity", "ztproxy/certs"},
	"ztproxy/store":   {"ztproxy/identity"},
	// cae (continuous access evaluation) applies the store's change feed.
	"ztproxy/cae": {"ztproxy/identity", "ztproxy/store"},
	// signals (the Shared Signals receiver) verifies SETs with authn's
	// key sets and acts through the store.
	"ztproxy/signals": {"ztproxy/identity", "ztproxy/authn", "ztproxy/store"},
	// adminapi (the operator API) acts through the store, the session
	// revoker and the device inventory; the portal serves it.
	"ztproxy/adminapi":   {"ztproxy/identity", "ztproxy/authn", "ztproxy/store", "ztproxy/devices", "ztproxy/certs"},
	"ztproxy/riskengine": {"ztproxy/identity"},
	"ztproxy/awscreds":   {"ztproxy/identity"},
	"ztproxy/upstream":   {},
	"ztproxy/idheaders":  {"ztproxy/identity"},
	"ztproxy/audit":      {"ztproxy/identity"},
	"ztproxy/metrics":    {},
	"ztproxy/listener":   {},
	"ztproxy/tracing":    {},

	"ztproxy/identity": {},

	"ztproxy/internal/stsdouble": {},
	"ztproxy/internal/demo":      {},
	"ztproxy/internal/demo/op":   {},
	"ztproxy/internal/testenv":   {},
}

// TestImportDirection keeps imports flowing one way (cmd → config → front
// doors → decide → components and shared leaves → identity) and forbids
// util/common grab-bags. The table itself must allow no cycle, so an
// import against the direction cannot be admitted by adding the reverse
// edge to it.
func TestImportDirection(t *testing.T) {
	if cycle := layoutCycle(); cycle != nil {
		t.Errorf("the layout table allows a cycle: %s", strings.Join(cycle, " → "))
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := fields[0]
		if strings.HasSuffix(pkg, "/util") || strings.HasSuffix(pkg, "/common") || strings.HasSuffix(pkg, "/utils") {
			t.Errorf("%s: no util/common packages", pkg)
		}
		if strings.HasPrefix(pkg, "ztproxy/cmd/") || pkg == "ztproxy" || pkg == "ztproxy/examples" || pkg == "ztproxy/deploy" || strings.HasPrefix(pkg, "ztproxy/bench") {
			// Wiring, test-only example checks and the benchmark harness
			// sit above everything.
			continue
		}
		allowed, known := allowedImports[pkg]
		if !known {
			t.Errorf("%s: not in the layout table; add it with its allowed imports", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, "ztproxy/") {
				continue
			}
			ok := false
			for _, a := range allowed {
				ok = ok || a == imp
			}
			if !ok {
				t.Errorf("%s imports %s, against the dependency direction", pkg, imp)
			}
		}
	}
}

// layoutCycle returns a cycle of allowedImports, or nil.
func layoutCycle() []string {
	const (
		unvisited = iota
		onPath
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(pkg string) []string
	visit = func(pkg string) []string {
		switch state[pkg] {
		case onPath:
			for i, p := range path {
				if p == pkg {
					return append(append([]string(nil), path[i:]...), pkg)
				}
			}
		case done:
			return nil
		}
		state[pkg] = onPath
		path = append(path, pkg)
		for _, imp := range allowedImports[pkg] {
			if cycle := visit(imp); cycle != nil {
				return cycle
			}
		}
		path = path[:len(path)-1]
		state[pkg] = done
		return nil
	}
	for pkg := range allowedImports {
		if cycle := visit(pkg); cycle != nil {
			return cycle
		}
	}
	return nil
}
