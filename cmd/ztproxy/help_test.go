package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryCommandHasHelp: issue 15.7, `risk flag --help` printed only
// "--config is required", others printed their flags, then "flag: help
// requested" and exit 2. Every command and sub-command now answers --help
// (and -h, and "ztproxy help ...") with exit 0, its usage, an example and
// the page that documents it.
func TestEveryCommandHasHelp(t *testing.T) {
	root := filepath.Join("..", "..")
	for name, h := range commandHelps {
		if h.Usage == "" || h.Summary == "" || !strings.HasPrefix(h.Example, "ztproxy "+strings.Fields(name)[0]) || h.Doc == "" {
			t.Errorf("%s: incomplete help %+v", name, h)
		}
		doc := strings.Fields(h.Doc)[0]
		if _, err := os.Stat(filepath.Join(root, doc)); err != nil {
			t.Errorf("%s: documentation %s: %v", name, doc, err)
		}
		for _, form := range [][]string{append(strings.Fields(name), "--help"), append(strings.Fields(name), "-h"),
			append([]string{"help"}, strings.Fields(name)...)} {
			if name == "version" && form[len(form)-1] == "-h" {
				continue
			}
			var stdout, stderr strings.Builder
			code := run(form, &stdout, &stderr)
			out := stdout.String()
			if code != 0 || !strings.Contains(out, "Usage: ztproxy "+h.Usage) || !strings.Contains(out, "Example:\n  "+h.Example) ||
				!strings.Contains(out, "Documentation: "+h.Doc) || stderr.Len() != 0 {
				t.Errorf("ztproxy %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(form, " "), code, out, stderr.String())
			}
		}
	}
	// The groups list their sub-commands; a missing one is a usage error.
	for _, group := range []string{"risk", "keys", "certs", "policy", "store", "aws", "demo keys", "demo risk", "device", "devices"} {
		var stdout, stderr strings.Builder
		if code := run(append(strings.Fields(group), "--help"), &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "ztproxy "+group+" ") {
			t.Errorf("ztproxy %s --help: exit %d\n%s%s", group, code, stdout.String(), stderr.String())
		}
		stdout.Reset()
		stderr.Reset()
		if code := run(strings.Fields(group), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "a sub-command is required") {
			t.Errorf("ztproxy %s: exit %d\n%s", group, code, stderr.String())
		}
	}
}

// TestUsageErrorsPointAtHelp: a usage mistake names the help to read.
func TestUsageErrorsPointAtHelp(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := run([]string{"risk", "flag", "alice"}, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), `Run "ztproxy risk flag --help" for usage.`) {
		t.Errorf("exit %d\n%s", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"keys", "list"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "missing USER") {
		t.Errorf("keys list without a user: exit %d\n%s", code, stderr.String())
	}
}
