package ztproxy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// frontDoorCodes find decide.Error literals and StatusOf's own codes.
var frontDoorCodes = []*regexp.Regexp{
	regexp.MustCompile(`\bCode:\s*"([a-z0-9_]+)"`),
	regexp.MustCompile(`return\s+(?:http\.Status\w+|\d+),\s*"([a-z0-9_]+)"`),
}

// errorCodeSources finds the error codes in the code: decide.Error
// literals and StatusOf's own codes in the decision engine and the front
// doors, bearer and sign-in error codes in authn.
var errorCodeSources = map[string][]*regexp.Regexp{
	"decide":      frontDoorCodes,
	"proxy":       frontDoorCodes,
	"portal":      frontDoorCodes,
	"forwardauth": frontDoorCodes,
	"authn": {
		regexp.MustCompile(`\bCode:\s*"([a-z0-9_]+)"`),
		regexp.MustCompile(`\bCode\w+\s*=\s*"([a-z0-9_]+)"`),
		regexp.MustCompile(`signInError\([^,]+,\s*"([a-z0-9_]+)"`),
	},
}

// TestErrorCodesDocumented (issue 22.4): docs/operations.md's table of
// error codes lists exactly the codes the audit log and error answers can
// carry.
func TestErrorCodesDocumented(t *testing.T) {
	inCode := map[string]string{}
	for dir, patterns := range errorCodeSources {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, re := range patterns {
				for _, m := range re.FindAllStringSubmatch(string(src), -1) {
					inCode[m[1]] = f
				}
			}
		}
	}
	if len(inCode) < 10 {
		t.Fatalf("found only %d error codes in the source; the patterns no longer match it", len(inCode))
	}
	doc, err := os.ReadFile(filepath.Join("docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "### Error codes\n")
	if !ok {
		t.Fatal("docs/operations.md has no \"### Error codes\" section")
	}
	if end := strings.Index(table, "\n#"); end >= 0 {
		table = table[:end]
	}
	inDocs := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9_]+)` \\|").FindAllStringSubmatch(table, -1) {
		inDocs[m[1]] = true
	}
	var undocumented, stale []string
	for code, file := range inCode {
		if !inDocs[code] {
			undocumented = append(undocumented, code+" ("+file+")")
		}
	}
	for code := range inDocs {
		if _, ok := inCode[code]; !ok {
			stale = append(stale, code)
		}
	}
	slices.Sort(undocumented)
	slices.Sort(stale)
	if len(undocumented) > 0 {
		t.Errorf("error codes missing from docs/operations.md#error-codes: %s", strings.Join(undocumented, ", "))
	}
	if len(stale) > 0 {
		t.Errorf("docs/operations.md#error-codes lists codes the code never produces: %s", strings.Join(stale, ", "))
	}
}
