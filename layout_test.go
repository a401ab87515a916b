package ztproxy_test

import (
	"os/exec"
	"strings"
	"testing"
)

// allowedImports is DESIGN.md's dependency direction: a package may import
// only the project packages listed for it.
var allowedImports = map[string][]string{
	"ztproxy/identity":           {},
	"ztproxy/upstream":           {},
	"ztproxy/metrics":            {},
	"ztproxy/idheaders":          {"ztproxy/identity"},
	"ztproxy/audit":              {"ztproxy/identity"},
	"ztproxy/authz":              {"ztproxy/identity"},
	"ztproxy/authn":              {"ztproxy/identity"},
	"ztproxy/certs":              {"ztproxy/identity"},
	"ztproxy/decide":             {"ztproxy/identity", "ztproxy/audit", "ztproxy/upstream", "ztproxy/metrics", "ztproxy/idheaders", "ztproxy/authn", "ztproxy/authz", "ztproxy/certs", "ztproxy/awscreds"},
	"ztproxy/portal":             {"ztproxy/identity", "ztproxy/decide", "ztproxy/authn", "ztproxy/awscreds"},
	"ztproxy/forwardauth":        {"ztproxy/identity", "ztproxy/decide", "ztproxy/idheaders", "ztproxy/metrics", "ztproxy/authn"},
	"ztproxy/proxy":              {"ztproxy/identity", "ztproxy/decide", "ztproxy/portal", "ztproxy/forwardauth", "ztproxy/audit", "ztproxy/upstream", "ztproxy/metrics", "ztproxy/idheaders", "ztproxy/authn", "ztproxy/authz", "ztproxy/certs", "ztproxy/store", "ztproxy/riskengine", "ztproxy/awscreds"},
	"ztproxy/config":             {"ztproxy/identity", "ztproxy/decide", "ztproxy/upstream", "ztproxy/authn", "ztproxy/authz", "ztproxy/certs", "ztproxy/proxy", "ztproxy/store", "ztproxy/riskengine", "ztproxy/awscreds"},
	"ztproxy/store":              {"ztproxy/identity"},
	"ztproxy/riskengine":         {"ztproxy/identity"},
	"ztproxy/awscreds":           {"ztproxy/identity"},
	"ztproxy/internal/stsdouble": {},
	"ztproxy/internal/demo":      {},
	"ztproxy/internal/demo/op":   {},
	"ztproxy/internal/testenv":   {},
}

// TestImportDirection keeps imports flowing one way (cmd → config → proxy →
// authn/authz/certs → identity) and forbids util/common grab-bags.
func TestImportDirection(t *testing.T) {
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
		if strings.HasPrefix(pkg, "ztproxy/cmd/") || pkg == "ztproxy" || pkg == "ztproxy/examples" || strings.HasPrefix(pkg, "ztproxy/bench") {
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
