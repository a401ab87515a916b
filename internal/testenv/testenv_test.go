package testenv

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// recordingTB captures how RequireComponent ends a test.
type recordingTB struct {
	testing.TB
	fatal, skip bool
}

func (r *recordingTB) Helper()               {}
func (r *recordingTB) Fatalf(string, ...any) { r.fatal = true }
func (r *recordingTB) Skipf(string, ...any)  { r.skip = true }

func TestRequireComponent(t *testing.T) {
	missing := errors.New("not installed")
	for _, tc := range []struct {
		ci          string
		err         error
		fatal, skip bool
	}{
		{ci: "true", err: missing, fatal: true},
		{ci: "", err: missing, skip: true},
		{ci: "false", err: missing, skip: true},
		{ci: "true", err: nil},
	} {
		t.Setenv("CI", tc.ci)
		r := &recordingTB{}
		RequireComponent(r, "thing", tc.err)
		if r.fatal != tc.fatal || r.skip != tc.skip {
			t.Errorf("CI=%q err=%v: fatal=%v skip=%v, want fatal=%v skip=%v", tc.ci, tc.err, r.fatal, r.skip, tc.fatal, tc.skip)
		}
	}
}

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.HasPrefix(string(mod), "module ztproxy\n") {
		t.Fatalf("RepoRoot = %s: go.mod %q, %v", root, mod, err)
	}
}

func TestFreePort(t *testing.T) {
	if p := FreePort(t); p <= 0 || p > 65535 {
		t.Fatalf("FreePort = %d", p)
	}
}

func TestChromium(t *testing.T) {
	path := ChromiumPath(t)
	out, err := exec.Command(path, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Chromium") {
		t.Fatalf("%s --version: %s %v", path, out, err)
	}
	if len(ChromiumFlags) == 0 || ChromiumFlags[0] != "--headless" {
		t.Errorf("ChromiumFlags = %v", ChromiumFlags)
	}
}
